"""trident.rtl"""
