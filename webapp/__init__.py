"""The web app (`hris-runbook setup-links`): one module per route family, assembled in `webapp.app`.

Route modules never import each other; flows never import this package (the links they email are
made in tasks/: tokens.py, setup_links.py, export_links.py).
"""
