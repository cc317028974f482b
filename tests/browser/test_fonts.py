"""Chinese renders as glyphs, not boxes: chromium finds a CJK font (Debian's fonts-noto-cjk, which
`make test` installs). Without one every zh-hans screen, and every screenshot of it, is unreadable."""

DRAW = """() => {
    const canvas = document.createElement("canvas");
    canvas.width = 240;
    canvas.height = 60;
    const ctx = canvas.getContext("2d");
    ctx.font = "40px sans-serif";
    const pixels = (text) => {
        ctx.clearRect(0, 0, 240, 60);
        ctx.fillText(text, 0, 45);
        return Array.from(ctx.getImageData(0, 0, 240, 60).data).join(",");
    };
    const chinese = pixels("签约回款");
    // U+0378 is unassigned: no font has it, so it is drawn as the missing-glyph box.
    return {inked: /[1-9]/.test(chinese), boxes: chinese === pixels("\\u0378\\u0378\\u0378\\u0378")};
}"""


def test_chinese_text_is_drawn_with_a_cjk_font_not_as_boxes(page):
    page.set_content("<html lang='zh-hans'><body></body></html>")
    drawn = page.evaluate(DRAW)
    assert drawn["inked"]
    assert not drawn["boxes"], "no CJK font: install Debian's fonts-noto-cjk (make browser-deps)"
