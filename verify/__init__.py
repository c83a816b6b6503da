"""trident.verify"""
