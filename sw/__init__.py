"""trident.sw"""
