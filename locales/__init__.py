"""gettext catalogs (zh_Hans default, zh_Hant, en)."""
