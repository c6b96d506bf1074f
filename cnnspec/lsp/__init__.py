"""``cnnspec lsp``: a Language Server Protocol server over stdio (pygls), never TensorFlow.

The server shows what ``cnnspec validate`` and ``cnnspec inspect`` know while the user types:
located diagnostics (:mod:`.diagnostics`), hover with shapes and counts (:mod:`.hover`),
go-to-definition (:mod:`.navigation`), references (:mod:`.references`: an id's or block's
by :mod:`.navigation`, a var's by :mod:`.rename`'s scoping, over the open and workspace specs),
rename (:mod:`.rename`; all three read the segment of a dotted name under the cursor one way,
:mod:`.segments`), completion (:mod:`.completion`) and the
model outline (:mod:`.symbols`). :mod:`.documents` compiles the editor's unsaved text with the
same passes as ``validate`` and tracks the files each spec includes; :mod:`.server` wires it
all to pygls. Only :mod:`.server` imports pygls, so the rest is testable without it.
"""
