#!/usr/bin/env python3
"""Mutation testing of flipd: each mutant of tests/mutants/catalogue must be
killed by `make check` (or, for raft/ and storage/, the fixture stress).

  run.py --list                 one line per mutant (make mutants-list)
  run.py --check                parse the catalogue; every mutant's line must
                                be found exactly once in this tree (no build)
  run.py BUILD [ID...]          run the mutants (all, or the ones named)
                                (make mutants [MUTANT=id])

How a run works (tests/mutants/README.md): the tree as it is now (HEAD plus
uncommitted changes to tracked files, plus untracked files that are not
ignored) is copied into BUILD/mutants/tree; the user's tree is never
written. For each mutant, one at a time: its `find` line is replaced there
(a line found other than exactly once is a stale mutant: an error, not a
survivor), `make -j2 WERROR=` rebuilds into BUILD/mutants/build (it persists across
the mutants, so only the changed file recompiles), then the mutant's hint
tests run first (`fixture_stress` among them: the stress first), then `tests/run.sh B check --fail-fast -j2`, then for raft/ and
storage/ `fixture_stress --seeds 1..2000`. The first failure kills it if
that test passes on BUILD/mutants/pristine (the same tree unmutated);
otherwise it was flaky and the step runs once more (twice flaky: verdict
"flaky", an error). The file is restored before the next mutant. The scratch copy is removed at the
end (KEEP=1 keeps it). The last line is exactly "N killed, N survived"; the
exit status is non-zero when a mutant survived, was stale or did not build.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CATALOGUE = os.path.join(HERE, "catalogue")
FIELDS = ("file", "find", "replace", "why", "tests")
REQUIRED = ("file", "find", "replace", "why")
STRESS_DIRS = ("raft/", "storage/")
STRESS_SEEDS = "1..2000"


class CatalogueError(Exception):
    pass


def parse(path=CATALOGUE):
    """Returns the mutants as dicts, in catalogue order."""
    mutants = []
    cur = None
    with open(path, encoding="utf-8") as f:
        for no, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.fullmatch(r"\[([A-Za-z0-9][A-Za-z0-9_.-]*)\]", line.strip())
            if m:
                cur = {"id": m.group(1), "line": no}
                mutants.append(cur)
                continue
            m = re.fullmatch(r"([a-z]+)\s+(.*\S)", line)
            if not m or cur is None:
                raise CatalogueError(f"{path}:{no}: not `[id]` or `field value`")
            key, val = m.group(1), m.group(2)
            if key not in FIELDS:
                raise CatalogueError(f"{path}:{no}: unknown field {key!r}")
            if key in cur:
                raise CatalogueError(f"{path}:{no}: {key} given twice")
            cur[key] = val
    seen = set()
    for mu in mutants:
        for key in REQUIRED:
            if key not in mu:
                raise CatalogueError(
                    f"{path}:{mu['line']}: mutant {mu['id']} has no {key}")
        if mu["id"] in seen:
            raise CatalogueError(f"{path}:{mu['line']}: id {mu['id']} twice")
        seen.add(mu["id"])
        if mu["find"].strip() == mu["replace"].strip():
            raise CatalogueError(f"{path}:{mu['line']}: replace == find")
        mu["tests"] = mu.get("tests", "").split()
    return mutants


def locate(tree, mu):
    """Index of the one line of mu's file whose text (without leading and
    trailing blanks) is mu's find; raises CatalogueError otherwise."""
    path = os.path.join(tree, mu["file"])
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise CatalogueError(f"{mu['id']}: {mu['file']}: {e.strerror}")
    hits = [i for i, l in enumerate(lines) if l.strip() == mu["find"].strip()]
    if len(hits) != 1:
        raise CatalogueError(
            f"{mu['id']}: stale: its line is found {len(hits)} times in "
            f"{mu['file']} (must be exactly once): {mu['find'].strip()}")
    return lines, hits[0]


def mutated(lines, i, mu):
    old = lines[i]
    indent = old[:len(old) - len(old.lstrip())]
    out = list(lines)
    out[i] = indent + mu["replace"].strip()
    return "\n".join(out)


def check(mutants, tree):
    bad = 0
    for mu in mutants:
        try:
            locate(tree, mu)
        except CatalogueError as e:
            print(f"STALE {e}")
            bad += 1
    print(f"{len(mutants)} mutants, {bad} stale")
    return bad == 0


# ---- running -------------------------------------------------------------


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, **kw).stdout


def copy_tree(dst):
    """The user's tree as it is now, into dst, through git: HEAD plus
    uncommitted changes (git stash create writes a commit object and
    touches neither the index nor the files) plus untracked files."""
    rev = sh(["git", "-C", ROOT, "stash", "create"]).decode().strip() or "HEAD"
    os.makedirs(dst)
    tar = subprocess.Popen(["git", "-C", ROOT, "archive", rev],
                           stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", dst], stdin=tar.stdout, check=True)
    if tar.wait() != 0:
        raise RuntimeError("git archive failed")
    others = sh(["git", "-C", ROOT, "ls-files", "-z", "--others",
                 "--exclude-standard"]).decode().split("\0")
    for rel in filter(None, others):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, rel))
    return rev


class Scratch:
    def __init__(self, build):
        self.base = os.path.join(os.path.abspath(build), "mutants")
        self.tree = os.path.join(self.base, "tree")
        self.build = os.path.join(self.base, "build")
        self.pristine = os.path.join(self.base, "pristine")
        self.log = os.path.join(self.base, "logs")

    def setup(self):
        if os.path.exists(self.base):
            shutil.rmtree(self.base)
        rev = copy_tree(self.tree)
        os.makedirs(self.log)
        return rev

    def remove(self):
        if os.environ.get("KEEP") == "1":
            print(f"kept {self.base} (KEEP=1)")
            return
        shutil.rmtree(self.base, ignore_errors=True)


def make(scratch, logf, build=None):
    # WERROR= : a mutant may leave a helper unused; that is not a kill
    r = subprocess.run(["make", "-j2", f"BUILD={build or scratch.build}",
                        "WERROR=", "all"],
                       cwd=scratch.tree, stdout=logf, stderr=subprocess.STDOUT)
    return r.returncode == 0


FAIL_RE = re.compile(r"^FAIL\s+(\S+?):?\s")


CURRENT = {"sid": None}


def end_session(sid):
    """SIGTERM to every process of session `sid` (a step started with
    start_new_session: run.sh, timeout's own process groups, nodes)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 of stat: the session id
            try:
                os.kill(int(pid), signal.SIGTERM)
            except OSError:
                pass


def run_step(scratch, cmd, logf, env):
    """Runs one test step; returns the name of what failed, or None."""
    logf.write(f"\n$ {' '.join(cmd)}\n")
    logf.flush()
    p = subprocess.Popen(cmd, cwd=scratch.tree, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    CURRENT["sid"] = p.pid
    first = None
    try:
        for raw in p.stdout:
            line = raw.decode(errors="replace")
            logf.write(line)
            m = FAIL_RE.match(line)
            if m and first is None:
                first = m.group(1)
        rc = p.wait()
    except BaseException:  # interrupted: end the step's processes too
        end_session(p.pid)
        raise
    finally:
        CURRENT["sid"] = None
    if rc == 0:
        return None
    return first or f"{os.path.basename(cmd[0])} (exit {rc})"


def confirmed(scratch, who, logf, env):
    """A test that failed with the mutant must pass without it (the
    pristine build of the same tree) to count as a kill: one that fails
    there too failed for a reason outside the mutant (a port taken by
    another process on a shared machine, a timing bound on a loaded core)."""
    run = os.path.join(scratch.tree, "tests", "run.sh")
    if who.startswith("test_"):
        cmd = [run, scratch.pristine, "integration", who]
    elif re.fullmatch(r"[a-z0-9_]+", who) and who != "unit":
        cmd = [run, scratch.pristine, "unit", who]
    else:
        return True  # a runner failure: no one test to repeat
    logf.write(f"\n# does {who} pass without the mutant?\n")
    return run_step(scratch, cmd, logf, env) is None


def steps_for(mu, scratch):
    """(label, command) in order: hints, check, stress."""
    b = scratch.build
    run = os.path.join(scratch.tree, "tests", "run.sh")
    stress_hint = "fixture_stress" in mu["tests"]
    unit_hints = [t for t in mu["tests"]
                  if not t.startswith("test_") and t != "fixture_stress"]
    script_hints = [t for t in mu["tests"] if t.startswith("test_")]
    stress = ("stress", [os.path.join(b, "tests", "fixture_stress"),
                         "--seeds", STRESS_SEEDS])
    out = []
    if stress_hint:
        out.append(stress)  # the hint: the stress must catch it by itself
    if unit_hints:
        out.append(("hint", [run, b, "unit", "--fail-fast"] + unit_hints))
    if script_hints:
        out.append(("hint", [run, b, "integration", "--fail-fast"] +
                     script_hints))
    out.append(("check", [run, b, "check", "--fail-fast", "-j2"]))
    if mu["file"].startswith(STRESS_DIRS) and not stress_hint:
        out.append(stress)
    return out


def run_one(mu, scratch, env):
    """Returns (verdict, detail): killed/survived/stale/broken."""
    t0 = time.monotonic()
    try:
        lines, i = locate(scratch.tree, mu)
    except CatalogueError as e:
        return "stale", str(e), 0.0
    path = os.path.join(scratch.tree, mu["file"])
    original = "\n".join(lines)
    with open(os.path.join(scratch.log, mu["id"] + ".log"), "w") as logf:
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(mutated(lines, i, mu))
            if not make(scratch, logf):
                return "broken", "does not build", time.monotonic() - t0
            flaky = []
            for label, cmd in steps_for(mu, scratch):
                for attempt in (1, 2):
                    who = run_step(scratch, cmd, logf, env)
                    if who is None:
                        break
                    if label == "stress":
                        who = f"fixture_stress --seeds {STRESS_SEEDS}"
                    if label == "stress" or confirmed(scratch, who, logf,
                                                      env):
                        note = (f" (failed without the mutant too: "
                                f"{', '.join(flaky)})" if flaky else "")
                        return ("killed", f"{label}: {who}{note}",
                                time.monotonic() - t0)
                    flaky.append(who)
                    if attempt == 2:
                        return ("flaky", f"{label}: {', '.join(flaky)} "
                                "failed without the mutant too",
                                time.monotonic() - t0)
            return "survived", "", time.monotonic() - t0
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)


def run(build, ids):
    mutants = parse()
    if ids:
        known = {m["id"] for m in mutants}
        unknown = [i for i in ids if i not in known]
        if unknown:
            print(f"mutants: unknown id(s): {' '.join(unknown)}",
                  file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m["id"] in ids]
    scratch = Scratch(build)
    env = dict(os.environ)
    env.setdefault("TEST_TIMEOUT", "60")
    env.setdefault("UNIT_TIMEOUT", "600")
    env.pop("MAKEFLAGS", None)  # our own make -j2, not the caller's jobserver
    env.pop("MFLAGS", None)
    def on_term(*_):
        sys.exit(143)  # SystemExit: the run ends its step and reports

    signal.signal(signal.SIGTERM, on_term)
    t_all = time.monotonic()
    results = []
    status = None
    try:
        rev = scratch.setup()
        print(f"== mutants: {len(mutants)}, tree {rev[:12]} copied to "
              f"{scratch.tree}")
        with open(os.path.join(scratch.log, "build.log"), "w") as logf:
            if not (make(scratch, logf) and
                    make(scratch, logf, scratch.pristine)):
                print("mutants: the unmutated tree does not build "
                      f"(see {scratch.log}/build.log)", file=sys.stderr)
                return 2
        for n, mu in enumerate(mutants, 1):
            verdict, detail, took = run_one(mu, scratch, env)
            results.append((mu, verdict, detail, took))
            print(f"{n:3}/{len(mutants)} {verdict:8} {mu['id']:34} "
                  f"{took:6.1f}s  {detail}", flush=True)
    except (KeyboardInterrupt, SystemExit):
        if CURRENT["sid"] is not None:
            end_session(CURRENT["sid"])
        print(f"mutants: interrupted after {len(results)} of "
              f"{len(mutants)}", file=sys.stderr)
        status = 130
    finally:
        bad = [r for r in results if r[1] != "killed"]
        if bad and os.environ.get("KEEP") != "1":
            keep = os.path.join(os.path.abspath(build), "mutants-logs")
            shutil.rmtree(keep, ignore_errors=True)
            if os.path.isdir(scratch.log):
                shutil.copytree(scratch.log, keep)
                print(f"logs of this run: {keep}")
        scratch.remove()
    rv = report(results, time.monotonic() - t_all)
    return status if status is not None else rv


def report(results, took_all):
    print()
    print(f"{'mutant':34} {'file':22} {'verdict':8} {'secs':>6}  by")
    for mu, verdict, detail, took in results:
        print(f"{mu['id']:34} {mu['file']:22} {verdict:8} {took:6.1f}  "
              f"{detail}")
    killed = sum(1 for r in results if r[1] == "killed")
    survived = sum(1 for r in results if r[1] == "survived")
    errors = [r for r in results if r[1] in ("stale", "broken", "flaky")]
    for mu, verdict, detail, _ in errors:
        print(f"ERROR {mu['id']}: {verdict}: {detail}")
    for mu, verdict, _, _ in results:
        if verdict == "survived":
            print(f"SURVIVED {mu['id']} ({mu['file']}): {mu['why']}")
    print(f"wall time {took_all:.0f} s")
    print(f"{killed} killed, {survived} survived")
    return 0 if survived == 0 and not errors else 1


def main(argv):
    try:
        if argv[:1] == ["--list"]:
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head
            for mu in parse():
                print(f"{mu['id']:34} {mu['file']:22} {mu['why']}")
            return 0
        if argv[:1] == ["--check"]:
            return 0 if check(parse(), ROOT) else 1
        if not argv or argv[0].startswith("-"):
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
        return run(argv[0], argv[1:])
    except CatalogueError as e:
        print(f"mutants: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
