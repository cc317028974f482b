"""Target forms: excel. (stub)"""
