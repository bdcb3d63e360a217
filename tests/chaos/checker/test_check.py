#!/usr/bin/env python3
"""Self-tests of check.py on hand-made histories.

    python3 tests/chaos/checker/test_check.py [-v] [TEST-NAME-SUBSTRING...]

Every broken history must be caught with the right property; every valid
one must pass.  The last line is "checker: N passed, N failed"; the exit
status is non-zero when a test failed.
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the source tree clean
import check  # noqa: E402

MS = 1000000
T0 = 5000 * MS  # monotonic clocks do not start at 0


def t(ms):
    return T0 + int(ms * MS)


class H:
    """A hand-made history; times in ms, written in the harness format."""

    def __init__(self):
        self.ops = {}
        self.invokes = {}
        self.subs = {}
        self.final = None
        self.nemesis = []

    # client ops
    def op(self, proc, op, key, inv, comp=None, outcome="ok", rev=None,
           value=None, exp=None, node=1, **extra):
        rec = {"proc": proc, "op": op, "key": key, "invoke_ns": t(inv),
               "outcome": outcome, "node": node}
        if comp is not None:
            rec["complete_ns"] = t(comp)
        if rev is not None:
            rec["revision"] = rev
        if value is not None:
            rec["value"] = value
        if exp is not None:
            rec["expected_revision"] = exp
        rec.update(extra)
        self.ops.setdefault(proc, []).append(rec)
        return rec

    def set(self, proc, key, value, inv, comp=None, rev=None, outcome="ok", **kw):
        return self.op(proc, "set", key, inv, comp, outcome, rev, value=value, **kw)

    def cas(self, proc, key, value, exp, inv, comp=None, rev=None, outcome="ok", **kw):
        return self.op(proc, "cas", key, inv, comp, outcome, rev, value=value, exp=exp, **kw)

    def delete(self, proc, key, inv, comp=None, rev=None, outcome="ok", **kw):
        return self.op(proc, "del", key, inv, comp, outcome, rev, **kw)

    def get(self, proc, key, inv, comp, value, rev=None, lin=True, **kw):
        return self.op(proc, "get", key, inv, comp, "ok", rev, read_value=value,
                       linearizable=lin, **kw)

    def invoke_only(self, proc, op, key, inv, value=None, seq=None):
        rec = {"type": "invoke", "proc": proc, "op": op, "key": key,
               "invoke_ns": t(inv)}
        if value is not None:
            rec["value"] = value
        if seq is not None:
            rec["seq"] = seq
        self.ops.setdefault(proc, []).append(rec)

    # subscriber records
    def ev(self, sub, node, ms, typ, **kw):
        rec = {"sub": sub, "node": node, "t_ns": t(ms), "type": typ}
        if "flags" in kw:
            kw["flags"] = [{"key": k, "deleted": True, "revision": r} if v is None
                           else {"key": k, "value": v, "revision": r}
                           for k, v, r in kw["flags"]]
        rec.update(kw)
        self.subs.setdefault(sub, []).append(rec)

    def change(self, sub, node, ms, rev, key, value):
        self.ev(sub, node, ms, "change", revision=rev, flags=[(key, value, rev)])

    def snapshot(self, sub, node, ms, S, items, resync=False):
        self.ev(sub, node, ms, "begin", revision=S, resync=resync)
        for k, v, r in items:
            self.ev(sub, node, ms, "item", flags=[(k, v, r)])
        self.ev(sub, node, ms, "end", revision=S)

    def final_reads(self, state, healed, nodes=(1, 2, 3), subs=None):
        reads = {}
        for n in nodes:
            reads[str(n)] = {k: (None if v is None else {"value": v[0], "revision": v[1]})
                             for k, v in state.items()}
        self.final = {"healed_ns": t(healed), "reads": reads}
        if subs is not None:
            self.final["subscribers_final"] = subs

    def fault(self, ms, fault, action, nodes, minority=None, cut=None, subs=None):
        rec = {"t_ns": t(ms), "fault": fault, "action": action, "nodes": nodes}
        if subs is not None:
            rec["subs"] = subs
        if minority is not None:
            rec["minority"] = minority
        if cut is not None:
            rec["cut"] = cut
        self.nemesis.append(rec)

    def write(self, d):
        for proc, recs in self.ops.items():
            with open(os.path.join(d, "ops.%s.jsonl" % proc), "w") as f:
                for r in recs:
                    f.write(json.dumps(r) + "\n")
        for sub, recs in self.subs.items():
            with open(os.path.join(d, "subs.%s.jsonl" % sub), "w") as f:
                for r in recs:
                    f.write(json.dumps(r) + "\n")
        if self.final is not None:
            with open(os.path.join(d, "final.json"), "w") as f:
                json.dump(self.final, f)
        if self.nemesis:
            with open(os.path.join(d, "nemesis.jsonl"), "w") as f:
                for r in self.nemesis:
                    f.write(json.dumps(r) + "\n")


def base():
    """A valid history: two keys, sets, a cas, a delete, gets, and one
    subscriber on node 2 that sees everything."""
    h = H()
    h.set("w1", "k1", "w1:1", 10, 20, rev=5)
    h.set("w2", "k2", "w2:1", 15, 25, rev=6)
    h.set("w1", "k1", "w1:2", 30, 40, rev=8)
    h.get("r1", "k1", 45, 50, "w1:2", rev=8)
    h.delete("w2", "k2", 50, 60, rev=9)
    h.get("r1", "k2", 65, 70, None)
    h.cas("w1", "k1", "w1:3", 8, 80, 90, rev=11)
    h.get("r1", "k1", 92, 94, "w1:3", rev=11, applied=11)
    h.get("r2", "k2", 93, 95, None, lin=False, node=3, applied=11)
    h.ev("s1", 2, 1, "subscribe", prefixes=["k"])
    h.snapshot("s1", 2, 2, 3, [])
    h.ev("s1", 2, 4, "heartbeat", applied=3, stale=False)
    h.change("s1", 2, 21, 5, "k1", "w1:1")
    h.change("s1", 2, 26, 6, "k2", "w2:1")
    h.change("s1", 2, 41, 8, "k1", "w1:2")
    h.change("s1", 2, 61, 9, "k2", None)
    h.change("s1", 2, 91, 11, "k1", "w1:3")
    h.ev("s1", 2, 100, "heartbeat", applied=11, stale=False)
    h.final_reads({"k1": ("w1:3", 11), "k2": None}, healed=110)
    return h


class CheckerTest(unittest.TestCase):
    def run_checker(self, h, **kw):
        with tempfile.TemporaryDirectory() as d:
            h.write(d)
            return check.check_dir(d, **kw)

    def failing(self, res):
        return sorted(p for p, d in res["properties"].items() if not d["ok"])

    def assertValid(self, h, **kw):
        res = self.run_checker(h, **kw)
        if not res["valid"]:
            self.fail("expected valid, got:\n" + check.format_text(res, 5))
        return res

    def assertCaught(self, h, prop, **kw):
        res = self.run_checker(h, **kw)
        d = res["properties"][prop]
        if d["violations"] == 0:
            self.fail("expected a %s violation, got:\n%s" % (prop, check.format_text(res, 5)))
        self.assertFalse(res["valid"])
        self.assertEqual(res["verdict"], "invalid")
        self.assertTrue(d["first"]["message"])
        return res

    # ---------------------------------------------------------- valid ones

    def test_valid_base(self):
        res = self.assertValid(base())
        self.assertEqual(res["stats"]["reads"]["linearizable"], 3)
        self.assertEqual(res["stats"]["subscriber_changes"], 5)

    def test_valid_unknown_write_took_effect(self):
        h = base()
        # timed out, but it committed: seen by the subscriber and the final reads
        h.set("w3", "k1", "w3:1", 96, 99, outcome="unknown", error="timeout")
        h.change("s1", 2, 104, 12, "k1", "w3:1")
        h.final_reads({"k1": ("w3:1", 12), "k2": None}, healed=110)
        res = self.assertValid(h)
        self.assertEqual(res["stats"]["unknown_writes_committed"], 1)

    def test_valid_unknown_write_not_applied_and_invoke_only(self):
        h = base()
        h.set("w3", "k2", "w3:2", 96, 99, outcome="unknown", error="LEADERSHIP_LOST")
        h.invoke_only("w4", "set", "k1", 97, value="w4:1", seq=1)  # client died
        h.delete("w5", "k1", 97, outcome="unknown")  # never seen either
        h.set("w6", "k1", "w6:1", 98, 99, outcome="fail", error="NOT_LEADER")
        res = self.assertValid(h)
        self.assertEqual(res["stats"]["ops"]["set"]["unknown"], 2)

    def test_valid_concurrent_writes_and_reads(self):
        h = base()
        # overlapping writes: the later-invoked one got the lower revision
        h.set("w1", "k3", "w1:k3", 100, 130, rev=14)
        h.set("w2", "k3", "w2:k3", 105, 120, rev=13)
        h.get("r1", "k3", 110, 125, "w2:k3", rev=13)    # between the two
        h.get("r2", "k3", 112, 135, "w1:k3", rev=14)    # overlaps both
        h.get("r3", "k3", 121, 128, "w2:k3", rev=13)    # w1:k3 may not be in yet
        h.change("s1", 2, 121, 13, "k3", "w2:k3")
        h.change("s1", 2, 131, 14, "k3", "w1:k3")
        h.final_reads({"k1": ("w1:3", 11), "k2": None, "k3": ("w1:k3", 14)}, healed=140)
        self.assertValid(h)

    def test_valid_resync_replaces_state(self):
        h = base()
        # s2 on node 3 holds state at 6, disconnects, resumes from 6 on
        # node 1 whose change log is gone: resync at 9 (k2 deleted -> absent)
        h.ev("s2", 3, 1, "subscribe")
        h.snapshot("s2", 3, 27, 6, [("k1", "w1:1", 5), ("k2", "w2:1", 6)])
        h.ev("s2", 3, 28, "heartbeat", applied=6, stale=False)
        h.ev("s2", 3, 29, "disconnect")
        h.ev("s2", 1, 65, "resume", revision=6)
        h.snapshot("s2", 1, 66, 9, [("k1", "w1:2", 8)], resync=True)
        h.change("s2", 1, 91, 11, "k1", "w1:3")
        self.assertValid(h)

    def test_valid_resume_across_nodes(self):
        h = base()
        h.ev("s3", 1, 1, "subscribe")
        h.snapshot("s3", 1, 2, 3, [])
        h.change("s3", 1, 21, 5, "k1", "w1:1")
        h.change("s3", 1, 26, 6, "k2", "w2:1")
        h.ev("s3", 1, 30, "error", status="SLOW_CONSUMER")
        h.ev("s3", 3, 31, "resume", revision=6)
        h.change("s3", 3, 42, 8, "k1", "w1:2")
        h.ev("s3", 3, 43, "heartbeat", applied=8, stale=False)
        h.ev("s3", 3, 44, "disconnect")
        h.ev("s3", 2, 45, "resume", revision=8)  # from the heartbeat's revision
        h.change("s3", 2, 62, 9, "k2", None)
        h.change("s3", 2, 92, 11, "k1", "w1:3")
        h.final_reads({"k1": ("w1:3", 11), "k2": None}, healed=110,
                      subs={"s1": {"k1": "w1:3"}, "s3": {"k1": "w1:3", "k2": None}})
        self.assertValid(h)

    def test_valid_not_found_read_needs_search(self):
        h = base()
        h.subs = {}  # nobody watched: an unseen unknown delete may have applied
        # an unknown delete explains a NOT_FOUND read after an acked set
        h.delete("w3", "k1", 95, 97, outcome="unknown")
        h.get("r3", "k1", 98, 99, None)
        h.final_reads({"k1": None, "k2": None}, healed=110)
        res = self.assertValid(h)
        self.assertGreaterEqual(res["stats"]["reads"]["searched"], 1)
        self.assertEqual(res["stats"]["keys_covered_by_a_subscriber"], 0)

    def test_valid_unknown_delete_seen_by_subscriber(self):
        h = base()
        h.delete("w3", "k1", 95, 97, outcome="unknown")
        h.get("r3", "k1", 98, 99, None)
        h.change("s1", 2, 98.5, 12, "k1", None)
        h.final_reads({"k1": None, "k2": None}, healed=110)
        res = self.assertValid(h)
        self.assertEqual(res["stats"]["keys_covered_by_a_subscriber"], 2)

    def test_unseen_delete_cannot_explain_read_when_covered(self):
        h = base()
        # s1 was owed every change of k1 from before its first write up to
        # rev 12, a write sent after the get completed: the unknown delete
        # did not apply before the get, so its NOT_FOUND is stale
        h.delete("w3", "k1", 95, 97, outcome="unknown")
        h.get("r3", "k1", 98, 99, None)
        h.set("w2", "k2", "w2:2", 100, 102, rev=12)
        h.change("s1", 2, 103, 12, "k2", "w2:2")
        h.final_reads({"k1": ("w1:3", 11), "k2": ("w2:2", 12)}, healed=110)
        res = self.assertCaught(h, "R")
        self.assertIn("owed every change", res["properties"]["R"]["first"]["message"])
        # no later write, but the final read found k1 at rev 11 <= what s1
        # was owed: a delete that applied would be above 11 and visible
        h = base()
        h.delete("w3", "k1", 95, 97, outcome="unknown")
        h.get("r3", "k1", 98, 99, None)
        self.assertCaught(h, "R")

    def test_valid_partition_with_told_subscriber(self):
        h = base()
        h.fault(70, "partition", "start", [1, 2, 3], minority=[2])
        h.ev("s1", 2, 75, "heartbeat", applied=9, stale=True)
        h.fault(150, "partition", "stop", [1, 2, 3])
        h.ev("s1", 2, 151, "heartbeat", applied=11, stale=False)
        self.assertValid(h, stale_bound_ms=10)

    def test_valid_subscriber_failed_over_from_minority(self):
        h = base()
        h.ev("s4", 3, 1, "subscribe")
        h.snapshot("s4", 3, 2, 3, [])
        h.change("s4", 3, 21, 5, "k1", "w1:1")
        h.change("s4", 3, 26, 6, "k2", "w2:1")
        h.change("s4", 3, 41, 8, "k1", "w1:2")
        h.fault(50, "partition", "start", [3], minority=[3])
        h.ev("s4", 3, 55, "disconnect")  # no heartbeats for a while: moved
        h.ev("s4", 1, 56, "resume", revision=8)
        h.change("s4", 1, 61, 9, "k2", None)
        h.change("s4", 1, 91, 11, "k1", "w1:3")
        h.fault(100, "heal", "stop", [])
        self.assertValid(h, stale_bound_ms=10)

    def cut_from_minority(self, leave_ms):
        """s4 on node 3 when a partition that also cuts s4 from node 3
        starts at 50 (netns mode); s4 hears nothing and leaves at
        leave_ms."""
        h = base()
        h.ev("s4", 3, 1, "subscribe")
        h.snapshot("s4", 3, 2, 3, [])
        h.change("s4", 3, 21, 5, "k1", "w1:1")
        h.change("s4", 3, 26, 6, "k2", "w2:1")
        h.change("s4", 3, 41, 8, "k1", "w1:2")
        h.fault(50, "partition", "start", [3], minority=[3], cut=[["s4", 3]])
        h.ev("s4", 3, leave_ms, "disconnect")
        h.ev("s4", 1, leave_ms + 1, "resume", revision=8)
        h.change("s4", 1, leave_ms + 2, 9, "k2", None)
        h.change("s4", 1, max(leave_ms + 3, 91), 11, "k1", "w1:3")
        h.fault(105, "heal", "stop", [])
        return h

    def test_valid_cut_subscriber_left_within_cut_bound(self):
        # no stale heartbeat can reach it: the cut bound applies, not the
        # stale bound
        self.assertValid(self.cut_from_minority(75), stale_bound_ms=10, cut_bound_ms=40)

    # -------------------------------------------------- must be caught
    def test_cut_subscriber_stayed_on_its_node(self):
        res = self.assertCaught(self.cut_from_minority(95), "L", stale_bound_ms=10,
                                cut_bound_ms=40)
        self.assertIn("cut from its node", res["properties"]["L"]["first"]["message"])
        # without "cut" the same history breaks the stale bound instead
        h = self.cut_from_minority(95)
        h.nemesis[0].pop("cut")
        res = self.assertCaught(h, "L", stale_bound_ms=10, cut_bound_ms=40)
        self.assertIn("not told", res["properties"]["L"]["first"]["message"])


    def test_lost_ack(self):
        h = base()
        # every node lost the acked cas at rev 11
        h.final_reads({"k1": ("w1:2", 8), "k2": None}, healed=110)
        res = self.assertCaught(h, "W1")
        self.assertIn("lost ack", res["properties"]["W1"]["first"]["message"])
        self.assertIn("w1:3", res["properties"]["W1"]["first"]["message"])

    def test_lost_ack_key_vanished(self):
        h = base()
        h.final_reads({"k1": None, "k2": None}, healed=110)
        self.assertCaught(h, "W1")

    def test_stale_read(self):
        h = base()
        # the cas at rev 11 completed at 90; this get started at 95 and read rev 8
        h.get("r3", "k1", 95, 96, "w1:2", rev=8, node=1)
        res = self.assertCaught(h, "R")
        self.assertIn("stale read", res["properties"]["R"]["first"]["message"])

    def test_stale_read_via_subscriber_evidence(self):
        h = base()
        # nobody acked rev 12, but a subscriber saw it before the get began
        h.set("w3", "k1", "w3:1", 96, 99, outcome="unknown")
        h.change("s1", 2, 101, 12, "k1", "w3:1")
        h.get("r3", "k1", 102, 103, "w1:3", rev=11)
        h.final_reads({"k1": ("w3:1", 12), "k2": None}, healed=110)
        self.assertCaught(h, "R")

    def test_stale_node_read_goes_back(self):
        h = base()
        h.get("r4", "k1", 95, 96, "w1:3", rev=11, lin=False, node=3, applied=11)
        h.get("r4", "k1", 97, 98, "w1:2", rev=8, lin=False, node=3, applied=9)
        self.assertCaught(h, "R")

    def test_not_linearizable_found_by_search(self):
        h = base()
        # a NOT_FOUND read explained by an unknown delete, then a read of the
        # older value: each passes the fast path, no order fits both
        h.subs = {}
        h.delete("w3", "k1", 95, 96, outcome="unknown")
        h.get("r3", "k1", 97, 98, None)
        h.get("r3", "k1", 99, 100, "w1:3", rev=11)
        res = self.assertCaught(h, "R")
        self.assertIn("not linearizable", res["properties"]["R"]["first"]["message"])
        self.assertIn("w1:3", res["properties"]["R"]["first"]["message"])

    def test_search_budget_exhausted_is_failure(self):
        h = base()
        h.subs = {}
        for i in range(6):  # several unknown deletes: many orders to try
            h.delete("d%d" % i, "k1", 95 + i * 0.1, 96, outcome="unknown")
        h.get("r3", "k1", 97, 98, None)
        h.get("r3", "k2", 97, 98, None)
        h.final_reads({"k1": None, "k2": None}, healed=110)
        self.assertValid(h)  # a real budget decides it
        res = self.run_checker(h, search_budget=2)
        self.assertEqual(res["verdict"], "unknown")
        self.assertFalse(res["valid"])
        self.assertFalse(res["properties"]["R"]["ok"])
        self.assertTrue(any("gave up" in u["message"] for u in res["unknowns"]))

    def test_phantom_value(self):
        h = base()
        h.get("r3", "k1", 95, 96, "nobody:1", rev=12)
        res = self.assertCaught(h, "W2")
        self.assertIn("nobody:1", res["properties"]["W2"]["first"]["message"])

    def test_phantom_from_failed_cas(self):
        h = base()
        h.cas("w3", "k2", "w3:cas", 9, 95, 96, outcome="fail", error="CAS_CONFLICT",
              current_revision=0)
        h.change("s1", 2, 101, 12, "k2", "w3:cas")
        self.assertCaught(h, "ONCE")

    # ------------------------------------------- exactly-once (ONCE)

    def test_applied_twice_seen_by_subscriber(self):
        """H1: a write committed by the new leader, answered NOT_LEADER by
        the deposed one, resent and applied again: one value, two revs."""
        h = base()
        h.set("w3", "k1", "w3:dup", 95, 105, rev=14)
        h.change("s1", 2, 101, 12, "k1", "w3:dup")
        h.change("s1", 2, 104, 14, "k1", "w3:dup")
        h.final_reads({"k1": ("w3:dup", 14), "k2": None}, healed=110)
        res = self.assertCaught(h, "ONCE")
        self.assertIn("applied twice", res["properties"]["ONCE"]["first"]["message"])

    def test_applied_twice_only_in_final_change_history(self):
        """No live subscriber saw it; the final change history (a resume
        from revision 0 after healing) holds the value at two revisions."""
        h = base()
        h.set("w3", "k1", "w3:dup", 95, 105, rev=14)
        h.final_reads({"k1": ("w3:dup", 14), "k2": None}, healed=110)
        h.ev("hist1", 1, 111, "resume", revision=0)
        for rev, k, v in ((5, "k1", "w1:1"), (6, "k2", "w2:1"), (8, "k1", "w1:2"),
                          (9, "k2", None), (11, "k1", "w1:3"), (12, "k1", "w3:dup"),
                          (14, "k1", "w3:dup")):
            h.change("hist1", 1, 112, rev, k, v)
        h.ev("hist1", 1, 113, "stop")
        self.assertCaught(h, "ONCE")

    def test_cas_told_conflict_with_its_own_revision(self):
        h = base()
        h.cas("w3", "k2", "w3:cas", 0, 95, 99, outcome="fail", error="CAS_CONFLICT",
              current_revision=12)
        h.change("s1", 2, 97, 12, "k2", "w3:cas")
        h.final_reads({"k1": ("w1:3", 11), "k2": ("w3:cas", 12)}, healed=110)
        res = self.assertCaught(h, "ONCE")
        self.assertIn("own revision", res["properties"]["ONCE"]["first"]["message"])

    def test_delete_told_not_found_but_applied(self):
        h = base()
        h.delete("w3", "k1", 95, 99, outcome="fail", error="NOT_FOUND")
        h.change("s1", 2, 97, 12, "k1", None)
        h.final_reads({"k1": None, "k2": None}, healed=110)
        self.assertCaught(h, "ONCE")

    def test_valid_resent_write_applied_once(self):
        """With request ids a resend is one op: ok at its one revision,
        seen once; unknown writes seen once are fine too."""
        h = base()
        h.set("w3", "k1", "w3:1", 95, 105, rev=12, error=None)
        h.set("w4", "k2", "w4:1", 96, 106, outcome="unknown", error="LOST")
        h.change("s1", 2, 101, 12, "k1", "w3:1")
        h.change("s1", 2, 103, 13, "k2", "w4:1")
        h.final_reads({"k1": ("w3:1", 12), "k2": ("w4:1", 13)}, healed=110)
        self.assertValid(h)

    # --------------------------------------------- live but behind (LIVE)

    def test_live_subscriber_behind_an_ack(self):
        """A node restored from an old copy serves its subscriber as live
        (stale=false) at rev 6 while writes up to rev 11 were acked long
        before."""
        h = base()
        h.ev("s2", 3, 1, "subscribe", prefixes=["k"])
        h.snapshot("s2", 3, 2, 3, [])
        h.ev("s2", 3, 3, "heartbeat", applied=3, stale=False)
        h.change("s2", 3, 21, 5, "k1", "w1:1")
        h.change("s2", 3, 26, 6, "k2", "w2:1")
        h.ev("s2", 3, 30, "heartbeat", applied=6, stale=False)
        h.ev("s2", 3, 95, "heartbeat", applied=6, stale=False)
        h.ev("s2", 3, 99, "stop")
        res = self.assertCaught(h, "LIVE", live_lag_bound_ms=20)
        self.assertEqual(res["properties"]["LIVE"]["first"]["sub"], "s2")
        # within the bound it is only lag, not a violation
        self.assertValid(h, live_lag_bound_ms=1000)

    def test_valid_live_behind_while_the_harness_paused_it(self):
        """The harness SIGSTOPped the subscriber itself: its backlog is
        read late, which says nothing about its node."""
        h = base()
        h.ev("s2", 3, 1, "subscribe", prefixes=["k"])
        h.snapshot("s2", 3, 2, 3, [])
        h.ev("s2", 3, 3, "heartbeat", applied=3, stale=False)
        h.fault(15, "pause-subscriber", "start", [], subs=["s2"])
        h.fault(80, "pause-subscriber", "stop", [], subs=["s2"])
        for rev, k, v in ((5, "k1", "w1:1"), (6, "k2", "w2:1"), (8, "k1", "w1:2"),
                          (9, "k2", None), (11, "k1", "w1:3")):
            h.change("s2", 3, 95, rev, k, v)
        h.ev("s2", 3, 99, "stop")
        self.assertValid(h, live_lag_bound_ms=20)
        h.nemesis = []
        self.assertCaught(h, "LIVE", live_lag_bound_ms=20)

    def test_valid_live_then_stale_behind(self):
        """Behind, but it said stale in time: not a live answer."""
        h = base()
        h.ev("s2", 3, 1, "subscribe", prefixes=["k"])
        h.snapshot("s2", 3, 2, 3, [])
        h.ev("s2", 3, 3, "heartbeat", applied=3, stale=False)
        h.change("s2", 3, 21, 5, "k1", "w1:1")
        h.ev("s2", 3, 30, "heartbeat", applied=5, stale=True)
        h.ev("s2", 3, 95, "disconnect")
        h.ev("s2", 3, 99, "stop")
        self.assertValid(h, live_lag_bound_ms=20)

    def test_phantom_deletion(self):
        h = base()
        h.change("s1", 2, 101, 12, "k1", None)  # nobody deleted k1
        h.final_reads({"k1": None, "k2": None}, healed=110)
        self.assertCaught(h, "W2")

    def test_two_values_one_revision(self):
        h = base()
        h.ev("s2", 3, 1, "subscribe")
        h.snapshot("s2", 3, 42, 8, [("k1", "w1:1", 8)])  # w1:1 is rev 5's value
        self.assertCaught(h, "W3")

    def test_real_time_order(self):
        h = base()
        # acked at 40 with rev 8; this one was sent after and got rev 7
        h.set("w3", "k3", "w3:k3", 41, 43, rev=7)
        h.final_reads({"k1": ("w1:3", 11), "k2": None, "k3": ("w3:k3", 7)}, healed=110)
        h.subs["s1"].insert(8, {"sub": "s1", "node": 2, "t_ns": t(44), "type": "change",
                                "revision": 7, "flags": [{"key": "k3", "value": "w3:k3",
                                                          "revision": 7}]})
        self.assertCaught(h, "W4")

    def test_duplicate_event(self):
        h = base()
        h.change("s1", 2, 42, 8, "k1", "w1:2")  # rev 8 again
        h.subs["s1"].sort(key=lambda r: r["t_ns"])
        res = self.assertCaught(h, "S-dup")
        self.assertIn("rev 8", res["properties"]["S-dup"]["first"]["message"])

    def test_duplicate_event_across_resume(self):
        h = base()
        recs = h.subs["s1"]
        # disconnect after rev 8, resume from 8 on node 3, get 8 again
        i = next(i for i, r in enumerate(recs) if r.get("revision") == 8)
        extra = [{"sub": "s1", "node": 2, "t_ns": t(42), "type": "disconnect"},
                 {"sub": "s1", "node": 3, "t_ns": t(43), "type": "resume", "revision": 8},
                 {"sub": "s1", "node": 3, "t_ns": t(44), "type": "change", "revision": 8,
                  "flags": [{"key": "k1", "value": "w1:2", "revision": 8}]}]
        h.subs["s1"] = recs[:i + 1] + extra + recs[i + 1:]
        self.assertCaught(h, "S-dup")

    def test_out_of_order_event(self):
        h = base()
        recs = h.subs["s1"]
        i8 = next(i for i, r in enumerate(recs) if r.get("revision") == 8)
        i9 = next(i for i, r in enumerate(recs) if r.get("revision") == 9)
        recs[i8], recs[i9] = recs[i9], recs[i8]
        recs[i8]["t_ns"], recs[i9]["t_ns"] = recs[i9]["t_ns"], recs[i8]["t_ns"]
        res = self.assertCaught(h, "S-order")
        self.assertIn("out-of-order", res["properties"]["S-order"]["first"]["message"])

    def test_event_below_heartbeat(self):
        h = base()
        recs = h.subs["s1"]
        # the heartbeat says everything up to 6 was sent, then rev 5 arrives
        i5 = next(i for i, r in enumerate(recs) if r.get("revision") == 5)
        recs.insert(i5, {"sub": "s1", "node": 2, "t_ns": t(20), "type": "heartbeat",
                         "applied": 6, "stale": False})
        res = self.run_checker(h)
        self.assertIn("S-order", self.failing(res))
        self.assertIn("S-gap", self.failing(res))

    def test_silent_gap(self):
        h = base()
        h.subs["s1"] = [r for r in h.subs["s1"] if r.get("revision") != 8]
        res = self.assertCaught(h, "S-gap")
        first = res["properties"]["S-gap"]["first"]
        self.assertEqual(first["revision"], 8)
        self.assertEqual(first["sub"], "s1")

    def test_silent_gap_on_resume(self):
        h = base()
        h.ev("s2", 3, 1, "subscribe")
        h.snapshot("s2", 3, 27, 6, [("k1", "w1:1", 5), ("k2", "w2:1", 6)])
        h.ev("s2", 3, 29, "disconnect")
        h.ev("s2", 1, 65, "resume", revision=6)
        h.change("s2", 1, 66, 9, "k2", None)  # rev 8 (k1) skipped, no resync
        h.change("s2", 1, 91, 11, "k1", "w1:3")
        self.assertCaught(h, "S-gap")

    def test_wrong_resync_contents(self):
        h = base()
        h.ev("s2", 3, 1, "subscribe")
        h.snapshot("s2", 3, 27, 6, [("k1", "w1:1", 5), ("k2", "w2:1", 6)])
        h.ev("s2", 3, 29, "disconnect")
        h.ev("s2", 1, 65, "resume", revision=6)
        # state at 9 is k1=w1:2@8 and no k2: this resync holds k1's old value
        h.snapshot("s2", 1, 66, 9, [("k1", "w1:1", 5)], resync=True)
        h.change("s2", 1, 91, 11, "k1", "w1:3")
        res = self.assertCaught(h, "S-resync")
        self.assertIn("w1:1", res["properties"]["S-resync"]["first"]["message"])

    def test_wrong_resync_contents_missing_key(self):
        h = base()
        h.ev("s2", 3, 1, "subscribe")
        h.snapshot("s2", 3, 27, 6, [("k1", "w1:1", 5)])  # k2 (set at 6) missing
        h.change("s2", 3, 42, 8, "k1", "w1:2")
        self.assertCaught(h, "S-resync")

    def test_event_outside_prefixes(self):
        h = base()
        h.ev("s5", 1, 1, "subscribe", prefixes=["k1"])
        h.snapshot("s5", 1, 2, 3, [])
        h.change("s5", 1, 21, 5, "k1", "w1:1")
        h.change("s5", 1, 26, 6, "k2", "w2:1")
        self.assertCaught(h, "S-filter")

    def test_subscriber_not_converged(self):
        h = base()
        h.subs["s1"] = [r for r in h.subs["s1"] if r["t_ns"] < t(91)]
        res = self.assertCaught(h, "CONV")
        self.assertIn("did not converge", res["properties"]["CONV"]["first"]["message"])

    def test_subscriber_converged_late(self):
        h = base()
        recs = h.subs["s1"]
        recs[-2]["t_ns"] = t(110 + 10001)  # rev 11 arrives > 10 s after healing
        recs[-1]["t_ns"] = t(110 + 10002)
        self.assertCaught(h, "CONV")

    def test_nodes_disagree_after_healing(self):
        h = base()
        h.final["reads"]["3"]["k1"] = {"value": "w1:2", "revision": 8}
        res = self.run_checker(h)
        self.assertIn("CONV", self.failing(res))
        self.assertIn("W1", self.failing(res))

    def test_minority_ack(self):
        h = base()
        h.fault(70, "partition", "start", [1, 2, 3], minority=[1])
        h.fault(200, "partition", "stop", [1, 2, 3])
        # the cas (80..90) was answered by node 1, cut off since 70
        res = self.assertCaught(h, "P")
        self.assertIn("minority", res["properties"]["P"]["first"]["message"])

    def test_untold_leaderless_subscriber(self):
        h = base()
        h.fault(70, "partition", "start", [2], minority=[2])
        h.fault(150, "partition", "stop", [2])
        # s1 stays on node 2 with stale=false heartbeats only
        h.ev("s1", 2, 120, "heartbeat", applied=11, stale=False)
        res = self.assertCaught(h, "L", stale_bound_ms=10)
        self.assertEqual(res["properties"]["L"]["first"]["sub"], "s1")

    def test_valid_library_style_stream(self):
        """What a flip_watch-based subscriber logs: no subscribe/resume
        records, a disconnect, then changes continue from its position; a
        resync after another disconnect; "stale" state as a heartbeat."""
        h = base()
        h.ev("s6", 1, 2, "begin", revision=3, resync=False)
        h.ev("s6", 1, 2, "end", revision=3)
        h.change("s6", 1, 21, 5, "k1", "w1:1")
        h.ev("s6", 1, 22, "heartbeat", revision=5, stale=True)
        h.ev("s6", 1, 23, "disconnect")
        h.change("s6", 2, 27, 6, "k2", "w2:1")
        h.ev("s6", 2, 28, "disconnect")
        h.snapshot("s6", 3, 66, 9, [("k1", "w1:2", 8)], resync=True)
        h.change("s6", 3, 91, 11, "k1", "w1:3")
        self.assertValid(h)
        # the same stream skipping rev 8 without the resync is a gap
        h = base()
        h.ev("s6", 1, 2, "begin", revision=3, resync=False)
        h.ev("s6", 1, 2, "end", revision=3)
        h.change("s6", 1, 21, 5, "k1", "w1:1")
        h.change("s6", 1, 26, 6, "k2", "w2:1")
        h.ev("s6", 1, 28, "disconnect")
        h.change("s6", 3, 66, 9, "k2", None)
        self.assertCaught(h, "S-gap")

    def test_batched_change_split_across_records(self):
        h = H()
        h.set("w1", "a", "w1:1", 10, 20, rev=5)
        h.set("w2", "b", "w2:1", 10, 20, rev=5)   # one raft entry, two keys
        h.ev("s1", 1, 1, "subscribe")
        h.snapshot("s1", 1, 2, 1, [])
        h.change("s1", 1, 21, 5, "a", "w1:1")
        h.change("s1", 1, 21, 5, "b", "w2:1")      # handed over one flag at a time
        h.final_reads({"a": ("w1:1", 5), "b": ("w2:1", 5)}, healed=30)
        self.assertValid(h)  # group commit: one raft entry, two keys
        self.assertCaught(h, "W3", unique_revisions=True)
        # only half of the entry delivered: a gap
        h.subs["s1"].pop()
        res = self.run_checker(h)
        self.assertIn("S-gap", self.failing(res))

    def test_heal_all_closes_partitions(self):
        h = base()
        h.fault(60, "isolate-leader", "start", [1], minority=[1])
        h.fault(70, "all", "stop", [1, 2, 3])   # heal everything at 70
        self.assertValid(h)  # the cas at 80..90 on node 1 is after the heal
        h.nemesis.pop()
        self.assertCaught(h, "P")

    def test_valid_silent_move_between_nodes(self):
        """A subscriber that moved to another node without logging it (its
        records just name the new node) is no longer on the cut-off node."""
        h = base()
        h.ev("s7", 3, 2, "begin", revision=3, resync=False)
        h.ev("s7", 3, 2, "end", revision=3)
        h.change("s7", 3, 21, 5, "k1", "w1:1")
        h.change("s7", 1, 26, 6, "k2", "w2:1")       # now on node 1
        h.change("s7", 1, 41, 8, "k1", "w1:2")
        h.change("s7", 1, 61, 9, "k2", None)
        h.change("s7", 1, 91, 11, "k1", "w1:3")
        h.fault(30, "partition", "start", [3], minority=[3])
        h.fault(100, "partition", "stop", [3])
        self.assertValid(h, stale_bound_ms=10)
        h.subs["s7"][3]["node"] = 3                  # still on node 3 at 41
        res = self.assertCaught(h, "L", stale_bound_ms=10)
        self.assertEqual(res["properties"]["L"]["first"]["sub"], "s7")

    # -------------------------------------------------------------- misc

    def test_search_direct(self):
        S = check.SOp
        # w(a) [0,10] ; r->a [5,6] ; w(b) [20,30] ; r->b [25,40]
        ops = [S("w", "a", 0, 10, True, 0, None), S("r", "a", 5, 6, True, None, None),
               S("w", "b", 20, 30, True, 1, None), S("r", "b", 25, 40, True, None, None)]
        self.assertEqual(check.wgl_search(ops, 1000)[0], "ok")
        ops.append(S("r", "a", 31, 32, True, None, None))  # stale after w(b) done
        self.assertEqual(check.wgl_search(ops, 1000)[0], "fail")
        ops = [S("w", None, 0, float("inf"), False, None, None),
               S("w", "a", 0, 10, True, 0, None), S("r", None, 20, 21, True, None, None)]
        self.assertEqual(check.wgl_search(ops, 1000)[0], "ok")
        self.assertEqual(check.wgl_search(ops, 1)[0], "unknown")

    def test_malformed_history(self):
        h = base()
        h.set("w9", "k1", "w1:1", 1, 2, rev=99)  # value reused
        with self.assertRaises(check.HistoryError):
            self.run_checker(h)

    def test_cli(self):
        exe = [sys.executable, os.path.join(HERE, "check.py")]
        with tempfile.TemporaryDirectory() as d:
            good, bad, junk = (os.path.join(d, x) for x in ("good", "bad", "junk"))
            for p in (good, bad, junk):
                os.mkdir(p)
            base().write(good)
            h = base()
            h.final_reads({"k1": ("w1:2", 8), "k2": None}, healed=110)
            h.write(bad)
            with open(os.path.join(junk, "ops.x.jsonl"), "w") as f:
                f.write("{not json\n")
            r = subprocess.run(exe + [good], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("verdict: valid", r.stdout)
            r = subprocess.run(exe + [bad, "--json"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            j = json.loads(r.stdout)
            self.assertEqual(j["verdict"], "invalid")
            self.assertFalse(j["properties"]["W1"]["ok"])
            r = subprocess.run(exe + [bad], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("W1", r.stdout)
            r = subprocess.run(exe + [junk], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("ops.x.jsonl:1", r.stderr)

    def test_scale(self):
        """A larger valid history checks quickly (the search stays small)."""
        h = H()
        rev = 0
        nodes = ["1", "2", "3"]
        h.ev("s1", 1, 0, "subscribe")
        h.snapshot("s1", 1, 0.1, 0, [])
        last = {}
        ms = 1.0
        for i in range(1500):
            k = "k%d" % (i % 8)
            rev += 2
            h.set("w%d" % (i % 3), k, "v:%d" % i, ms, ms + 0.5, rev=rev,
                  node=nodes[i % 3])
            h.change("s1", 1, ms + 0.6, rev, k, "v:%d" % i)
            last[k] = ("v:%d" % i, rev)
            if i % 5 == 0:
                h.get("r1", k, ms + 0.7, ms + 0.8, last[k][0], rev=last[k][1])
            if i % 50 == 0:
                h.delete("w9", k, ms + 0.85, ms + 0.95, outcome="unknown")
                h.get("r2", k, ms + 0.86, ms + 0.9, last[k][0], rev=last[k][1])
            ms += 1.0
        h.final_reads(last, healed=ms + 10)
        start = time.time()
        res = self.assertValid(h)
        self.assertLess(time.time() - start, 5)
        self.assertEqual(res["stats"]["committed_changes"], 1500)



# --------------------------------------------------------------------------
# a simulated correct cluster: random valid histories (no false positives)
# --------------------------------------------------------------------------

LAG = {1: 0.0, 2: 2.0, 3: 5.0}  # ms each node's apply lags the commit


def simulate(seed, n_writes=120, n_procs=3, keys=("k0", "k1", "k2", "k3")):
    import random
    rng = random.Random(seed)
    h = H()
    plan = []  # (lp, proc, kind, key, inv, comp, node)
    for p in range(n_procs):
        tt = rng.uniform(0, 2)
        for i in range(n_writes // n_procs):
            kind = rng.choice(["set", "set", "set", "cas", "del", "get", "get", "sget"])
            dur = rng.uniform(0.3, 8)
            inv, comp = tt, tt + dur
            plan.append((inv + rng.random() * dur, "p%d" % p, kind, rng.choice(keys),
                         inv, comp, rng.choice([1, 2, 3])))
            tt = comp + rng.uniform(0, 2)
    plan.sort()
    state = {k: None for k in keys}      # key -> (value, rev) | None
    hist = {k: [(-1e9, None)] for k in keys}  # key -> [(time, state)]
    timeline = [(-1e9, 0)]               # (commit time, highest index)
    log = []                             # (commit time, rev, key, value|None)
    rev = 0
    seq = 0

    def at(k, tm):
        i = max(j for j, (ct, _) in enumerate(hist[k]) if ct <= tm)
        return hist[k][i][1]

    def rev_at(tm):
        return max(r for ct, r in timeline if ct <= tm)

    last = None  # the previous op's commit (None if it committed nothing)
    cand = None  # what this op may group with

    def commit(k, val, lp, comp):
        # group commit: the previous op's write to another key, committed
        # just before with nothing in between, may share this raft entry
        # (both now take effect at lp, still inside the earlier op)
        nonlocal rev, last
        if cand is not None and cand[1] != k and lp - cand[0] < 0.5 and lp <= cand[2] \
                and rng.random() < 0.5:
            lk = cand[1]
            hist[lk][-1] = (lp, hist[lk][-1][1])
            log[-1] = (lp,) + log[-1][1:]
            timeline[-1] = (lp, rev)
            grouped = True
        else:
            rev += 1
            grouped = False
        state[k] = None if val is None else (val, rev)
        hist[k].append((lp, state[k]))
        log.append((lp, rev, k, val))
        timeline.append((lp, rev))
        last = None if grouped else (lp, k, comp)  # at most two per entry

    for lp, proc, kind, k, inv, comp, node in plan:
        seq += 1
        cand, last = last, None
        if rng.random() < 0.2:  # leader no-op / barrier entries
            rev += 1
            timeline.append((lp, rev))
            cand = None
        roll = rng.random()
        outcome = "ok" if roll < 0.8 else ("unknown" if roll < 0.92 else "fail")
        applies = outcome == "ok" or (outcome == "unknown" and rng.random() < 0.5)
        if kind in ("set", "cas"):
            val = "%s:%d" % (proc, seq)
            extra = {}
            if kind == "cas":
                cur = state[k][1] if state[k] else 0
                exp = cur if rng.random() < 0.7 else cur + 1000
                extra["exp"] = exp
                if exp != cur:  # conflict: rejected at apply, uses an index
                    rev += 1
                    timeline.append((lp, rev))
                    h.cas(proc, k, val, exp, inv, comp, outcome="fail",
                          current_revision=cur, node=node, seq=seq)
                    continue
            if outcome == "fail":
                h.set(proc, k, val, inv, comp, outcome="fail", node=node, seq=seq, **extra) \
                    if kind == "set" else h.cas(proc, k, val, extra["exp"], inv, comp,
                                                 outcome="fail", node=node, seq=seq)
                continue
            if applies:
                commit(k, val, lp, comp)
            r = rev if (applies and outcome == "ok") else None
            if kind == "set":
                h.set(proc, k, val, inv, comp, rev=r, outcome=outcome, node=node, seq=seq)
            else:
                h.cas(proc, k, val, extra["exp"], inv, comp, rev=r, outcome=outcome,
                      node=node, seq=seq)
        elif kind == "del":
            if state[k] is None:
                h.delete(proc, k, inv, comp, outcome="fail", error="NOT_FOUND",
                         node=node, seq=seq)
                continue
            if outcome == "fail":
                h.delete(proc, k, inv, comp, outcome="fail", node=node, seq=seq)
                continue
            if applies:
                commit(k, None, lp, comp)
            h.delete(proc, k, inv, comp, rev=rev if (applies and outcome == "ok") else None,
                     outcome=outcome, node=node, seq=seq)
        elif kind == "get":
            st = state[k]
            h.get(proc, k, inv, comp, st[0] if st else None, rev=st[1] if st else None,
                  node=node, seq=seq)
        else:  # stale get on a lagging node
            tm = lp - LAG[node]
            st = at(k, tm)
            h.get(proc, k, inv, comp, st[0] if st else None, rev=st[1] if st else None,
                  lin=False, node=node, applied=rev_at(tm), seq=seq)
    end = max(c for _, _, _, _, _, c, _ in plan) + 1

    # subscribers
    subs_final = {}
    for si, prefixes in enumerate([[], ["k0", "k1"], ["k2"], ["k"]]):
        sub = "s%d" % si
        watched = [k for k in keys if not prefixes or any(k.startswith(p) for p in prefixes)]
        cuts = sorted(rng.uniform(0, end) for _ in range(rng.randint(0, 4)))
        bounds = [0.0] + cuts + [end + 40]
        view = {}
        pos = None
        hist_events = []
        for si2 in range(len(bounds) - 1):
            node = rng.choice([1, 2, 3])
            L = LAG[node]
            ts, te = bounds[si2] + 0.01, bounds[si2 + 1]
            if pos is None:
                h.ev(sub, node, ts, "subscribe", prefixes=prefixes)
                mode = "snap"
            else:
                h.ev(sub, node, ts, "resume", revision=pos)
                mode = "resync" if rng.random() < 0.3 else "resume"
            S = rev_at(ts - L)
            tcur = ts
            if mode == "snap" or (mode == "resync" and S >= pos):
                items = [(k, at(k, ts - L)[0], at(k, ts - L)[1]) for k in watched
                         if at(k, ts - L) is not None]
                h.snapshot(sub, node, ts, S, items, resync=(mode == "resync"))
                view = {k: v for k, v, _ in items}
                pos = S
            evs = []
            for ct, r, k, val in log:
                if r > pos and k in watched:
                    evs.append((max(ts + 0.001, ct + L), 0, r, k, val))
            hb = ts + 0.5
            while hb < te:
                evs.append((hb, 1, rev_at(hb - L), None, None))
                hb += rng.uniform(3, 12)
            evs.sort()
            for tm, typ, r, k, val in evs:
                if tm >= te:
                    break
                if typ == 0:
                    h.change(sub, node, tm, r, k, val)
                    if val is None:
                        view.pop(k, None)
                    else:
                        view[k] = val
                    pos = r
                elif r >= pos:
                    h.ev(sub, node, tm, "heartbeat", applied=r, stale=False)
                    pos = r
            if si2 < len(bounds) - 2:
                h.ev(sub, node, te, rng.choice(["disconnect", "error"]))
        if si % 2:
            subs_final[sub] = dict(view)
    h.final_reads({k: state[k] for k in keys}, healed=end, subs=subs_final)
    h.log = log
    return h


class SimulatedTest(unittest.TestCase):
    SEEDS = range(1, 13)

    def check(self, h, **kw):
        with tempfile.TemporaryDirectory() as d:
            h.write(d)
            return check.check_dir(d, **kw)

    def test_random_valid_histories(self):
        for seed in self.SEEDS:
            res = self.check(simulate(seed))
            if not res["valid"]:
                self.fail("seed %d: expected valid:\n%s" % (seed, check.format_text(res, 3)))

    def test_random_dropped_event_is_a_gap(self):
        for seed in self.SEEDS:
            h = simulate(seed)
            recs = h.subs["s0"]
            idx = [i for i, r in enumerate(recs) if r["type"] == "change"
                   and i + 1 < len(recs) and recs[i + 1]["type"] in ("change", "heartbeat")]
            if not idx:
                continue
            del recs[idx[len(idx) // 2]]
            res = self.check(h)
            self.assertGreater(res["properties"]["S-gap"]["violations"], 0, "seed %d" % seed)

    def test_random_duplicated_event(self):
        for seed in self.SEEDS:
            h = simulate(seed)
            recs = h.subs["s0"]
            idx = [i for i, r in enumerate(recs) if r["type"] == "change"]
            i = idx[len(idx) // 2]
            recs.insert(i + 1, dict(recs[i]))
            res = self.check(h)
            self.assertGreater(res["properties"]["S-dup"]["violations"], 0, "seed %d" % seed)

    def test_random_lost_ack(self):
        n = 0
        for seed in self.SEEDS:
            h = simulate(seed)
            acked = {(r["key"], r["revision"]) for recs in h.ops.values() for r in recs
                     if r.get("outcome") == "ok" and r["op"] != "get"}
            for k in sorted({k for _, _, k, _ in h.log}):
                ch = [(r, v) for _, r, kk, v in h.log if kk == k]
                if len(ch) >= 2 and (k, ch[-1][0]) in acked and ch[-2][1] is not None:
                    for node_reads in h.final["reads"].values():
                        node_reads[k] = {"value": ch[-2][1], "revision": ch[-2][0]}
                    res = self.check(h)
                    self.assertGreater(res["properties"]["W1"]["violations"], 0,
                                       "seed %d" % seed)
                    n += 1
                    break
        self.assertGreater(n, 3)
    def test_random_stale_read(self):
        """A linearizable get made to return the key's previous state after
        the newer write was acked: always caught (found and NOT_FOUND)."""
        n = 0
        for seed in self.SEEDS:
            for notfound in (False, True):
                h = simulate(seed)
                acked = {}
                for recs in h.ops.values():
                    for r in recs:
                        if r["op"] != "get" and r.get("outcome") == "ok":
                            acked[(r["key"], r["revision"])] = r
                cands = []
                for recs in h.ops.values():
                    for g in recs:
                        if g["op"] != "get" or not g["linearizable"] or not g.get("revision"):
                            continue
                        w = acked.get((g["key"], g["revision"]))
                        if w is None or w["complete_ns"] >= g["invoke_ns"]:
                            continue
                        prev = [(r, v) for _, r, k, v in h.log
                                if k == g["key"] and r < g["revision"]]
                        if prev and (prev[-1][1] is None) == notfound:
                            cands.append((g, prev[-1]))
                if not cands:
                    continue
                g, (pr, pv) = cands[len(cands) // 2]
                g["read_value"] = pv
                g["revision"] = pr if pv is not None else None
                res = self.check(h)
                self.assertGreater(res["properties"]["R"]["violations"], 0,
                                   "seed %d notfound %s" % (seed, notfound))
                n += 1
        self.assertGreater(n, 10)


class Result(unittest.TextTestResult):
    pass


def _flatten(suite):
    for x in suite:
        if isinstance(x, unittest.TestSuite):
            yield from _flatten(x)
        else:
            yield x


def main():
    argv = [a for a in sys.argv[1:] if not a.startswith("-")]
    verbose = "-v" in sys.argv
    loader = unittest.TestLoader()
    suite = unittest.TestSuite([loader.loadTestsFromTestCase(CheckerTest),
                                loader.loadTestsFromTestCase(SimulatedTest)])
    suite = unittest.TestSuite(list(_flatten(suite)))
    if argv:
        suite = unittest.TestSuite(tc for tc in suite if any(a in tc.id() for a in argv))
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if verbose else 1)
    start = time.time()
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors)
    passed = res.testsRun - failed
    print("(%.1f s)" % (time.time() - start))
    print("checker: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
