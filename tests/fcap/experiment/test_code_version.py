import subprocess

import fcap
from fcap.experiment.code_version import PACKAGE_ROOT, current, short


def git(root, *args):
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def checkout(root):
    (root / "fcap").mkdir(parents=True)
    (root / "fcap" / "a.py").write_text("x = 1\n")
    git(root.parent, "init", "-q", str(root))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "one")
    return git(root, "rev-parse", "HEAD")


def test_a_checkout_gives_its_commit_and_whether_tracked_files_changed(tmp_path):
    root = tmp_path / "repo"
    sha = checkout(root)
    assert current(root) == {"fcap": fcap.__version__, "commit": sha, "changes": False}
    (root / "notes.txt").write_text("untracked\n")  # not code fcap runs from git's view
    current.cache_clear()
    assert current(root)["changes"] is False
    (root / "fcap" / "a.py").write_text("x = 2\n")
    current.cache_clear()
    assert current(root) == {"fcap": fcap.__version__, "commit": sha, "changes": True}
    assert short(current(root)) == sha[:7] + "+changes"


def test_a_package_inside_someone_elses_repository_has_no_commit(tmp_path):
    checkout(tmp_path / "project")
    venv = tmp_path / "project" / ".venv" / "site-packages"  # fcap installed in a project venv
    venv.mkdir(parents=True)
    assert current(venv) == {"fcap": fcap.__version__, "commit": None, "changes": None}
    assert current(tmp_path / "nowhere") == {"fcap": fcap.__version__, "commit": None,
                                             "changes": None}
    assert short(current(venv)) == f"fcap {fcap.__version__}"
    assert short(None) == "-"


def test_this_checkout_is_described_as_git_does():
    here = current()
    assert PACKAGE_ROOT == __import__("pathlib").Path(fcap.__file__).resolve().parents[1]
    top = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "rev-parse", "HEAD"],
                         capture_output=True, text=True)
    assert here["commit"] == (top.stdout.strip() if top.returncode == 0 else None)
