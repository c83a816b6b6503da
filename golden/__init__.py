"""trident.golden"""
