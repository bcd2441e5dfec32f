"""The web POS for store clerks (门店收银): pages under /pos/."""
