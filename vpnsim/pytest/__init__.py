"""vpnsim's pytest plugin (entry point `vpnsim.pytest.plugin`): settings.py (options, resolved
and validated once), fixtures.py (labs on any scenario), items.py (scenario files as tests).
"""
