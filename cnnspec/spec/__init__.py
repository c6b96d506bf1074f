"""The front end: located YAML loading, composition, validation and resolution."""
