"""Target screens: editor. (stub)"""
