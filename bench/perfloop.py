#!/usr/bin/env python3
"""perfloop.py PERF_SCRIPT_TEXT: what held each loop thread, from a perf
recording of cpu-clock samples and sched:sched_switch events with call
graphs (bench/snapshot.sh PERF=FILE makes one and runs this on it).

A loop thread sleeps in epoll_wait between turns, so a switch-out whose
stack holds epoll_wait ends a turn. For each thread it prints:
  longest_cpu_turn_ms: the CPU time the cpu-clock samples between two
    epoll sleeps stand for (their periods summed: work done in one turn);
  longest_block_ms: the longest voluntary switch-out outside
    epoll_wait (a mutex, a disk flush, the mmap lock...), measured to the
    thread's next event, with the top of its kernel stack;
  blocks_over_1ms: how many such switch-outs lasted over 1 ms.
Reads the text of `perf script -F tid,time,period,event,trace,ip,sym`. Prints
nothing for a thread with no events."""
import collections
import re
import sys

EVENT = re.compile(r'\s*(\d+)\s+([\d.]+):\s+(\d+)\s+(\S+):\s*(.*)')


def parse(path):
    events, cur = [], None
    with open(path, errors='replace') as f:
        for line in f:
            m = EVENT.match(line)
            if m:
                if cur:
                    events.append(cur)
                cur = {'tid': m.group(1), 't': float(m.group(2)),
                       'period': int(m.group(3)), 'ev': m.group(4),
                       'tr': m.group(5), 'st': []}
            elif line.strip() and cur is not None:
                cur['st'].append(line.strip().split(' ', 1)[-1])
    if cur:
        events.append(cur)
    return events


def main():
    events = parse(sys.argv[1])
    by_tid = collections.defaultdict(list)
    for e in events:
        by_tid[e['tid']].append(e)
    for tid, evs in sorted(by_tid.items()):
        evs.sort(key=lambda e: e['t'])
        turn = best_turn = 0
        block, block_stack, n_blocks = 0.0, '', 0
        for i, e in enumerate(evs):
            if e['ev'].startswith('cpu-clock'):
                turn += e['period']  # ns of CPU this sample stands for
                continue
            if not e['ev'].startswith('sched:sched_switch'):
                continue
            if any('epoll_wait' in s or 'epoll_pwait' in s for s in e['st']):
                best_turn = max(best_turn, turn)
                turn = 0
                continue
            m = re.search(r'prev_state=(\S+)', e['tr'])
            if m is None or m.group(1).startswith('R'):
                continue  # preempted: waiting for a CPU, not blocked
            nxt = evs[i + 1]['t'] if i + 1 < len(evs) else e['t']
            off = nxt - e['t']
            if off > 0.001:
                n_blocks += 1
            if off > block:
                block = off
                top = [s for s in e['st'] if 'schedule' not in s][:6]
                block_stack = ' <- '.join(top)
        best_turn = max(best_turn, turn)
        print(f'perf_loop_thread {tid}: longest_cpu_turn_ms '
              f'{best_turn / 1e6:.1f} longest_block_ms '
              f'{block * 1000:.1f} blocks_over_1ms {n_blocks}'
              + (f' (longest in: {block_stack})' if block_stack else ''))


if __name__ == '__main__':
    main()
