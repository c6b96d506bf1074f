// A minimal VS Code client for `cnnspec lsp`: it starts the server for YAML files (the server
// leaves YAML that is no spec alone) and lets yaml-language-server keep the schema's completion.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("cnnspec").get("command");
  client = new LanguageClient(
    "cnnspec",
    "cnnspec",
    { command, args },
    {
      documentSelector: [{ scheme: "file", language: "yaml" }],
      // Block libraries edited outside the editor re-check the open specs that use them.
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{yaml,yml}") },
    },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
