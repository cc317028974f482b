"""Target forms: editor. (stub)"""
