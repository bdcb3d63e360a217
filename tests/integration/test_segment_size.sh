#!/usr/bin/env bash
# Large raft segments keep taking writes and linearizable reads
# (known-issues #14): raft_uv's 16-bit capacity counter wrapped with them
# and libraft then answered every write and barrier "no space". With 24 MiB
# segments 100 writes of 60 KB (the review's demo stopped after 69), with
# 32 MiB 600 (about 34 MiB: past the first segment's end and the point near
# 28 MiB where the counter read low again) and with 64 MiB, the largest
# accepted, 20: all acknowledged, and linearizable reads after them work.
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

MIB=$((1024 * 1024))
VALUE=$(head -c 60000 /dev/zero | tr '\0' 'v')

# write_values PREFIX N: N sets of a 60,000-byte value; fails on the first
# write that is not acknowledged.
write_values() {
    local prefix=$1 n=$2 i rev last=0
    for ((i = 1; i <= n; i++)); do
        rev=$(fctl set "$prefix.k$i" "$VALUE-$i" --type string) ||
            fail "write $i of $n (${prefix}) failed after $((i - 1)) acknowledged"
        [ "$rev" -gt "$last" ] || fail "write $i: revision $rev not above $last"
        last=$rev
    done
    say "$n writes of 60 KB acknowledged (last revision $last)"
}

# read_back PREFIX N: linearizable gets (through the leader's read barrier)
# of a few of the keys written, plus one small write and its read.
read_back() {
    local prefix=$1 n=$2 i
    for i in 1 $((n / 2)) "$n"; do
        [ "$(fctl get "$prefix.k$i")" = "$VALUE-$i" ] ||
            fail "linearizable get of $prefix.k$i returned another value"
    done
    fctl set "$prefix.small" done --type string >/dev/null ||
        fail "small write after the big ones failed"
    assert_eq "$(fctl get "$prefix.small")" done "linearizable get of $prefix.small"
}

# run_size MIB N: a fresh 3-node cluster with MIB-MiB segments takes N
# writes of 60 KB, then reads; echoes nothing, fails the test otherwise.
run_size() {
    local mib=$1 n=$2 i
    for ((i = 1; i <= CLUSTER_SIZE; i++)); do
        if node_alive "$i"; then
            node_kill "$i"
        fi
        rm -rf "${TMP:?}/n$i"
    done
    cluster_start 3 --segment-size $((mib * MIB))
    leader=$(wait_leader 20) || fail "no leader with $mib MiB segments"
    say "$mib MiB segments, leader n$leader"
    write_values "seg$mib" "$n"
    read_back "seg$mib" "$n"
}

# 24 MiB: the review's demo stopped after 69 writes (about 4.1 MiB).
run_size 24 100
# 32 MiB: the counter read 0 before the first write and would again near
# 28 MiB written; 600 writes go past both and past the first segment's end.
run_size 32 600
# The leader closed a full segment (named FIRST-LAST, both 16 digits).
closed=$(find "$TMP/n$leader/raft" -name '[0-9]*-[0-9]*' -size +$((16 * MIB))c | wc -l)
[ "$closed" -ge 1 ] || fail "no full closed segment in n$leader's raft dir"
# 64 MiB, the largest size --segment-size accepts.
run_size 64 20
say "large segments take writes and reads"
