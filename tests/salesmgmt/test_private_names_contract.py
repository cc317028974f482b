"""The `private_names` import-linter contract (salesmgmt.contracts) that `make lint` runs: it finds a
module taking another module's private name, by import, by attribute and by patching, and nothing else."""

import textwrap

from salesmgmt.contracts import violations_in

FIRST_PARTY = frozenset({"shop"})


def _tree(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def _found(tmp_path, name):
    return [(v.imported, v.name, v.line) for v in violations_in(tmp_path / name, tmp_path, FIRST_PARTY)]


def _shop(tmp_path, user_code: str):
    return _tree(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/prices/__init__.py": "",
            "shop/prices/rules.py": "def _round(x):\n    return x\n\ndef total(x):\n    return _round(x)\n",
            "shop/prices/user.py": user_code,
        },
    )


def test_importing_another_modules_private_name_is_found(tmp_path):
    _shop(tmp_path, "from shop.prices.rules import total, _round\n")
    assert _found(tmp_path, "shop/prices/user.py") == [("shop.prices.rules", "_round", 1)]


def test_a_relative_import_of_a_private_name_is_found(tmp_path):
    _shop(tmp_path, "\nfrom .rules import _round\n")
    assert _found(tmp_path, "shop/prices/user.py") == [("shop.prices.rules", "_round", 2)]


def test_using_a_private_name_through_the_module_is_found(tmp_path):
    _shop(
        tmp_path,
        """\
        from shop.prices import rules
        import shop.prices.rules as r
        import shop.prices.rules

        def f(x):
            return rules._round(x) + r._round(x) + shop.prices.rules._round(x)
        """,
    )
    found = _found(tmp_path, "shop/prices/user.py")
    assert sorted(found) == [("shop.prices.rules", "_round", 6)] * 3


def test_patching_a_private_name_is_found(tmp_path):
    _shop(
        tmp_path,
        """\
        from shop.prices import rules

        def test_it(monkeypatch):
            monkeypatch.setattr(rules, "_round", lambda x: x)
            monkeypatch.setattr("shop.prices.rules._round", lambda x: x)
        """,
    )
    assert _found(tmp_path, "shop/prices/user.py") == [
        ("shop.prices.rules", "_round", 4),
        ("shop.prices.rules", "_round", 5),
    ]


def test_public_names_own_private_names_and_other_libraries_are_fine(tmp_path):
    _shop(
        tmp_path,
        """\
        import os
        from django.utils.translation import gettext as _
        from shop.prices import rules
        from shop.prices.rules import total

        def _mine():
            return 1

        class Model:
            _meta = None

        def f(x, obj):
            # a public name, our own private name, dunders, attributes of objects and of other libraries
            return total(x) + rules.total(x) + _mine() + obj._meta + Model._meta + os._exit + rules.__name__
        """,
    )
    assert _found(tmp_path, "shop/prices/user.py") == []
    assert _found(tmp_path, "shop/prices/rules.py") == []
