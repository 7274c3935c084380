"""Clustering of matched records into leads, with guards against chaining strangers together.

Connected components over the auto-merge links and the people's "same" decisions. A component
that is implausibly large, that holds two records a person said are different, or that holds two
records whose names clearly differ (joined only through a third record without a name, or through a
chain of partial matches) is rebuilt greedily from its strongest links, taking a link only while the
cluster stays within the size limit and keeps no such pair; the links left out go to human review.
Only a person's "same" decision may put two clearly different names in one lead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass
class Clusters:
    labels: np.ndarray  # cluster label per node
    cut_edges: list[int]  # indices into the input edges that the guard refused
    split_components: int  # components the guard rebuilt
    largest_component: int  # before the guard


def cluster(
    n_nodes: int,
    edge_l: np.ndarray,
    edge_r: np.ndarray,
    edge_weight: np.ndarray,
    cannot_link: list[tuple[int, int]],
    max_size: int,
    names_differ: tuple[np.ndarray, np.ndarray] | None = None,
) -> Clusters:
    """Cluster nodes 0..n-1. Edges with weight ``inf`` are human "same" decisions: always taken first.

    ``cannot_link`` pairs (a person's "different") never share a cluster; ``names_differ`` pairs (two
    records whose names clearly differ) never share one through machine links alone."""
    graph = coo_matrix((np.ones(len(edge_l), dtype=np.int8), (edge_l, edge_r)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    largest = int(sizes.max()) if n_nodes else 0
    bad = set(np.flatnonzero(sizes > max_size).tolist())
    bad |= {int(labels[a]) for a, b in cannot_link if labels[a] == labels[b]}
    differ_l, differ_r = names_differ if names_differ is not None else (np.empty(0, np.int64), np.empty(0, np.int64))
    together = labels[differ_l] == labels[differ_r]  # vectorised: most such pairs are in different clusters
    differ_l, differ_r = differ_l[together], differ_r[together]
    bad |= set(labels[differ_l].tolist())
    if not bad:
        return Clusters(labels, [], 0, largest)

    forbidden: dict[int, set[int]] = {}  # a person's "different": binds human links too
    for a, b in cannot_link:
        forbidden.setdefault(a, set()).add(b)
        forbidden.setdefault(b, set()).add(a)
    distinct_names: dict[int, set[int]] = {}  # names that clearly differ: binds machine links only
    for a, b in zip(differ_l.tolist(), differ_r.tolist()):
        distinct_names.setdefault(a, set()).add(b)
        distinct_names.setdefault(b, set()).add(a)

    in_bad = np.isin(labels[edge_l], list(bad))
    candidates = np.flatnonzero(in_bad)
    order = candidates[np.argsort(-edge_weight[candidates], kind="stable")]
    parent: dict[int, int] = {}
    members: dict[int, list[int]] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    cut: list[int] = []
    for e in order.tolist():
        a, b = find(int(edge_l[e])), find(int(edge_r[e]))
        if a == b:
            continue
        ma, mb = members.get(a, [a]), members.get(b, [b])
        human = np.isinf(edge_weight[e])
        conflict = any(forbidden.get(x, set()).intersection(mb) for x in ma) or (
            not human and any(distinct_names.get(x, set()).intersection(mb) for x in ma))
        if conflict or (not human and len(ma) + len(mb) > max_size):
            cut.append(e)
            continue
        parent[b] = a
        members[a] = ma + mb
        members.pop(b, None)

    # Relabel the rebuilt components: nodes of a bad component take their new root as label,
    # offset past the existing labels so nothing collides.
    new_labels = labels.copy()
    offset = int(labels.max()) + 1
    for node in np.flatnonzero(np.isin(labels, list(bad))).tolist():
        new_labels[node] = offset + find(node)
    return Clusters(new_labels, cut, len(bad), largest)
