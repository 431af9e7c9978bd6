"""The console's texts, one module per page (``MESSAGES = {"key": ("English", "Français")}``),
merged by :func:`momoflow.console.i18n.catalog`. Keys are prefixed with their page."""
