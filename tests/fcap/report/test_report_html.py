"""report.html: report.md's content in one self-contained page (images embedded)."""
import base64
import re
import textwrap
from html.parser import HTMLParser

from fcap.cli import main


class Page(HTMLParser):
    """What a browser would show: tables as rows of cell texts, images, outside references."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.refs, self.tags, self.text = [], [], [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith("data:"):
                self.refs.append(attrs[key])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def markdown_tables(text):
    """Each pipe table of report.md as rows of cell texts (the separator row dropped)."""
    tables, current = [], None
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                current = (current or []) + [cells]
        elif current:
            tables.append(current)
            current = None
    return tables


def test_report_html_has_every_table_and_image_of_report_md(tmp_path, fix, in_tmp, capsys):
    exp = tmp_path / "rep.yaml"
    exp.write_text(textwrap.dedent(f"""
        name: rep
        plugins: [{fix / 'plugins' / 'toy_tasks.py'}]
        stages:
          first: {{task: toy_write, value: 2}}
          second: {{task: toy_write, init_from: first, value: 3}}
        variants: {{a: {{}}, b: {{stages.first.value: 10}}}}
        seeds: 2
        report:
          title: "Toy table"
          columns: [{{stage: second, metric: score, label: Score, scale: 100}}]
          paper: {{a: [4.5]}}
          row_labels: {{a: Alpha}}
          bars: true
          notes: "Scores are **x100**; see `metrics.json` & <raw> text."
    """))
    assert main([str(exp)]) == 0
    out_dir = in_tmp / "runs" / "rep"
    assert f"fcap: report written to {out_dir / 'report.md'} (and {out_dir / 'report.html'})" \
        in capsys.readouterr().out
    md = (out_dir / "report.md").read_text()
    page = Page()
    page.feed((out_dir / "report.html").read_text())

    assert page.refs == []  # self-contained: nothing to fetch
    md_images = re.findall(r"!\[([^\]]*)\]\(([^)]+)\)", md)
    assert sorted(p.name for p in (out_dir / "plots").iterdir()) == sorted(
        src.split("/")[-1] for _alt, src in md_images) and len(md_images) == 5
    assert [img["alt"] for img in page.images] == [alt for alt, _src in md_images]
    for img, (_alt, src) in zip(page.images, md_images):
        kind, data = img["src"].split(",", 1)
        assert kind == "data:image/png;base64"
        assert base64.b64decode(data) == (out_dir / src).read_bytes()

    tables = markdown_tables(md)
    assert len(tables) == 4  # the table, which rows differ, per seed, runs
    assert page.tables == tables
    assert ["Alpha", "5.0 ± 0.0 (n=2)", "4.5"] == page.tables[0][1][:3]
    text = "".join(page.text)
    assert "# " not in text and "Toy table" in text
    assert "Scores are x100; see metrics.json & <raw> text." in text
    assert "raw" not in page.tags and "strong" in page.tags and "code" in page.tags
