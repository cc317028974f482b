"""Both languages ship: the zh-hans catalogue translates every string, and the compiled .mo is current."""

import gettext
import re
import shutil
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def po_entries(text: str):
    """(msgid, msgstr list, flags) for every entry of a .po file; enough of the format for a check."""
    entries, flags, msgid, msgstrs, current = [], "", None, [], None

    def unquote(s):
        return s.strip()[1:-1].encode("raw_unicode_escape").decode("unicode_escape")

    def flush():
        if msgid is not None:
            entries.append((msgid, msgstrs, flags))

    for line in text.splitlines() + [""]:
        if not line.strip():
            flush()
            flags, msgid, msgstrs, current = "", None, [], None
        elif line.startswith("#,"):
            flags = line
        elif line.startswith("#"):
            continue
        elif line.startswith("msgid_plural"):
            current = "plural"
        elif line.startswith("msgid "):
            msgid, current = unquote(line[6:]), "msgid"
        elif line.startswith("msgstr"):
            msgstrs.append(unquote(line.split(" ", 1)[1]))
            current = "msgstr"
        elif line.startswith('"'):
            if current == "msgid":
                msgid += unquote(line)
            elif current == "msgstr":
                msgstrs[-1] += unquote(line)
    return entries


ENTRIES = [e for e in po_entries(PO.read_text(encoding="utf-8")) if e[0]]


def test_catalogue_is_complete_and_not_fuzzy():
    assert len(ENTRIES) > 300
    untranslated = [msgid for msgid, strs, _ in ENTRIES if not all(strs)]
    fuzzy = [msgid for msgid, _, flags in ENTRIES if "fuzzy" in flags]
    assert untranslated == [] and fuzzy == []


def test_placeholders_survive_translation():
    pattern = re.compile(r"%\(\w+\)[sd]|%[sd]")
    wrong = [
        msgid
        for msgid, strs, _ in ENTRIES
        if any(sorted(pattern.findall(msgid)) != sorted(pattern.findall(s)) for s in strs[:1])
    ]
    assert wrong == []


def test_compiled_catalogue_is_current():
    catalog = gettext.GNUTranslations(MO.open("rb"))._catalog
    missing = [msgid for msgid, strs, _ in ENTRIES if msgid not in catalog and (msgid, 0) not in catalog]
    assert missing == []


@pytest.mark.parametrize("english", ["My pipeline", "Team pipeline", "Customers"])
def test_key_screens_translate(english):
    with translation.override("zh-hans"):
        assert translation.gettext(english) != english


def test_language_switch_renders_chinese(org, client: Client):
    client.force_login(org.rep)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/pipeline/mine/"})
    html = client.get("/pipeline/mine/").content.decode()
    with translation.override("zh-hans"):
        assert translation.gettext("My pipeline") in html
    assert 'lang="zh-hans"' in html


def test_chinese_money_is_grouped_by_thousands():
    from decimal import Decimal

    from django.template import Context, Template

    with translation.override("zh-hans"):
        html = Template('{{ v|floatformat:"2g" }}').render(Context({"v": Decimal("3300000.5")}))
    assert html == "3,300,000.50"


@pytest.mark.skipif(
    shutil.which("xgettext") is None, reason="needs gettext's xgettext (make test installs the Debian package)"
)
def test_every_string_of_the_source_is_in_the_catalogue(tmp_path, settings):
    """What `make messages` would extract now is all in the shipped catalogue (a new string not extracted
    would otherwise ship in English only, unseen by the checks above)."""
    import os

    from django.core.management import call_command

    # makemessages writes into ./locale: run it in a folder of links to the sources, with a locale of its own.
    for name in ("crm", "pipeline", "targets", "coaching", "salesmgmt", "templates", "static"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "locale").mkdir()
    settings.LOCALE_PATHS = [str(tmp_path / "locale")]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        call_command("makemessages", locale=["zh_Hans"], symlinks=True, verbosity=0)
    finally:
        os.chdir(cwd)
    extracted = tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    assert extracted.exists()
    found = {msgid for msgid, _, _ in po_entries(extracted.read_text(encoding="utf-8")) if msgid}
    assert len(found) > 300, "the extraction read the sources"
    missing = sorted(found - {msgid for msgid, _, _ in ENTRIES})
    assert missing == [], "run `make messages` and translate: " + "; ".join(missing[:10])
