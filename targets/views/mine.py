"""Target screens: mine. (stub)"""
