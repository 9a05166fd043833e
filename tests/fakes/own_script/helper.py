VALUE = "helper module"
