"""Back ends over the IR: the Keras builder and the Python code emitter."""
