"""Target forms: mine. (stub)"""
