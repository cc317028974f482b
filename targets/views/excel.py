"""Target screens: excel. (stub)"""
