"""Bipartite matching and max-flow, the graph algorithms behind audit allocation.

Private: :func:`hopcroft_karp` is public through :mod:`qaflow.allocation`; :class:`MaxFlow`
is used only by the balancing step there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

__all__ = ["MaxFlow", "hopcroft_karp"]

L = TypeVar("L", bound=Hashable)
R = TypeVar("R", bound=Hashable)


def hopcroft_karp(adjacency: Mapping[L, Sequence[R]]) -> dict[L, R]:
    """A maximum matching of a bipartite graph, left vertex -> right vertex.

    ``adjacency`` lists each left vertex's neighbours; the order of left vertices and of
    each neighbour list decides between equally large matchings. O(E * sqrt(V)).
    """
    left = list(adjacency)
    match_l: dict[L, R] = {}
    match_r: dict[R, L] = {}
    infinity = len(left) + 1
    while True:
        # BFS: layer the free left vertices and the alternating paths from them.
        dist: dict[L, int] = {}
        queue: deque[L] = deque()
        for u in left:
            if u not in match_l:
                dist[u] = 0
                queue.append(u)
        found = infinity
        while queue:
            u = queue.popleft()
            if dist[u] >= found:
                continue
            for v in adjacency[u]:
                w = match_r.get(v)
                if w is None:
                    found = min(found, dist[u] + 1)
                elif w not in dist:
                    dist[w] = dist[u] + 1
                    queue.append(w)
        if found == infinity:
            return match_l
        # DFS: augment along vertex-disjoint shortest paths (iteratively, no recursion).
        for root in left:
            if root in match_l or dist.get(root) != 0:
                continue
            path = _augmenting_path(root, adjacency, match_r, dist, found)
            for u, v in path:
                match_l[u] = v
                match_r[v] = u


def _augmenting_path(
    root: L,
    adjacency: Mapping[L, Sequence[R]],
    match_r: Mapping[R, L],
    dist: dict[L, int],
    limit: int,
) -> list[tuple[L, R]]:
    """One shortest augmenting path from ``root`` in the layered graph, as (left, right) pairs.

    Vertices found to be dead ends are removed from ``dist`` so later searches skip them.
    """
    stack: list[tuple[L, int]] = [(root, 0)]
    chosen: list[R] = []
    while stack:
        u, i = stack[-1]
        neighbours = adjacency[u]
        if i >= len(neighbours):
            stack.pop()
            dist.pop(u, None)  # a dead end in this phase
            if chosen:
                chosen.pop()
            continue
        stack[-1] = (u, i + 1)
        v = neighbours[i]
        w = match_r.get(v)
        if w is None:
            if dist[u] + 1 == limit:
                chosen.append(v)
                return [(stack[k][0], chosen[k]) for k in range(len(stack))]
        elif dist.get(w) == dist[u] + 1:
            chosen.append(v)
            stack.append((w, 0))
    return []


class MaxFlow:
    """Dinic's max-flow on a small integer-capacity graph."""

    __slots__ = ("cap", "edges", "graph", "level", "ptr")

    def __init__(self, size: int) -> None:
        self.graph: list[list[int]] = [[] for _ in range(size)]
        self.edges: list[int] = []  # edge e goes to edges[e]; e ^ 1 is its reverse
        self.cap: list[int] = []
        self.level: list[int] = []
        self.ptr: list[int] = []

    def add(self, a: int, b: int, capacity: int) -> int:
        self.graph[a].append(len(self.edges))
        self.edges.append(b)
        self.cap.append(capacity)
        self.graph[b].append(len(self.edges))
        self.edges.append(a)
        self.cap.append(0)
        return len(self.edges) - 2

    def _bfs(self, s: int, t: int) -> bool:
        self.level = [-1] * len(self.graph)
        self.level[s] = 0
        queue = deque([s])
        while queue:
            a = queue.popleft()
            for e in self.graph[a]:
                if self.cap[e] > 0 and self.level[self.edges[e]] < 0:
                    self.level[self.edges[e]] = self.level[a] + 1
                    queue.append(self.edges[e])
        return self.level[t] >= 0

    def _push(self, s: int, t: int) -> int:
        # Iterative DFS for one augmenting path of the level graph (unit bottleneck here,
        # but the general form costs nothing).
        path: list[int] = []
        a = s
        while True:
            if a == t:
                pushed = min(self.cap[e] for e in path)
                for e in path:
                    self.cap[e] -= pushed
                    self.cap[e ^ 1] += pushed
                return pushed
            advanced = False
            while self.ptr[a] < len(self.graph[a]):
                e = self.graph[a][self.ptr[a]]
                b = self.edges[e]
                if self.cap[e] > 0 and self.level[b] == self.level[a] + 1:
                    path.append(e)
                    a = b
                    advanced = True
                    break
                self.ptr[a] += 1
            if not advanced:
                if not path:
                    return 0
                self.level[a] = -1  # dead end
                e = path.pop()
                a = self.edges[e ^ 1]
                self.ptr[a] += 1

    def run(self, s: int, t: int) -> int:
        total = 0
        while self._bfs(s, t):
            self.ptr = [0] * len(self.graph)
            while pushed := self._push(s, t):
                total += pushed
        return total
