//! Dependency-graph algorithms over step indices.
//!
//! `deps[i]` lists the indices of the steps that step `i` depends on
//! (edges point from a step to its dependencies).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// Kahn's algorithm; among the steps that are ready, the one declared first
/// goes first. Steps caught in a cycle (impossible in a validated template)
/// are appended at the end in declaration order.
pub(crate) fn topological_order(deps: &[Vec<usize>]) -> Vec<usize> {
    let (mut order, placed) = kahn(deps);
    order.extend((0..deps.len()).filter(|&i| !placed[i]));
    order
}

/// The order Kahn's algorithm finds, and which steps it could place.
fn kahn(deps: &[Vec<usize>]) -> (Vec<usize>, Vec<bool>) {
    let n = deps.len();
    let mut indegree: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        placed[i] = true;
        for &j in &dependents[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    (order, placed)
}

/// One cycle per strongly connected component of two or more steps, each
/// starting at the component's first-declared step and following dependency
/// edges (`[a, b]` means `a -> b -> a`). Shortest such cycle; deterministic.
/// Linear in steps plus edges: the components come from Tarjan's algorithm
/// (petgraph), and each search stays inside its component.
pub(crate) fn cycles(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut graph: DiGraph<(), ()> = DiGraph::with_capacity(deps.len(), deps.iter().map(Vec::len).sum());
    let nodes: Vec<NodeIndex> = (0..deps.len()).map(|_| graph.add_node(())).collect();
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            graph.add_edge(nodes[i], nodes[d], ());
        }
    }
    let mut members = vec![false; deps.len()];
    let mut found: Vec<Vec<usize>> = Vec::new();
    for component in tarjan_scc(&graph) {
        if component.len() < 2 {
            continue;
        }
        let indices: Vec<usize> = component.iter().map(|n| n.index()).collect();
        for &i in &indices {
            members[i] = true;
        }
        let start = *indices.iter().min().expect("a component has members");
        if let Some(cycle) = shortest_cycle(deps, start, &members) {
            found.push(cycle);
        }
        for &i in &indices {
            members[i] = false;
        }
    }
    found.sort_by_key(|cycle| cycle[0]);
    found
}

/// Breadth-first search from `start` back to `start` inside `members`.
/// The maps are sparse, so a search costs the size of its component, not of the graph.
fn shortest_cycle(deps: &[Vec<usize>], start: usize, members: &[bool]) -> Option<Vec<usize>> {
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for &j in &deps[i] {
            if j == start {
                let mut path = vec![i];
                let mut cur = i;
                while let Some(&p) = parent.get(&cur) {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            if members[j] && j != start && !parent.contains_key(&j) {
                parent.insert(j, i);
                queue.push_back(j);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_broken_by_declaration_order() {
        // 0 and 2 are roots; 1 depends on 2; 3 depends on 0.
        let deps = vec![vec![], vec![2], vec![], vec![0]];
        assert_eq!(topological_order(&deps), vec![0, 2, 1, 3]);
    }

    #[test]
    fn cycle_members_are_appended_after_the_sortable_steps() {
        let deps = vec![vec![1], vec![0], vec![]];
        assert_eq!(topological_order(&deps), vec![2, 0, 1]);
    }

    #[test]
    fn a_two_step_cycle_starts_at_the_first_declared_step() {
        let deps = vec![vec![], vec![2], vec![1]];
        assert_eq!(cycles(&deps), vec![vec![1, 2]]);
    }

    #[test]
    fn each_strongly_connected_component_is_reported_once() {
        // 0 -> 1 -> 2 -> 0 and 3 -> 4 -> 3, plus 5 depending on the first cycle.
        let deps = vec![vec![1], vec![2], vec![0], vec![4], vec![3], vec![0]];
        assert_eq!(cycles(&deps), vec![vec![0, 1, 2], vec![3, 4]]);
    }

    #[test]
    fn a_long_chain_behind_a_cycle_is_checked_in_linear_time() {
        // 0 <-> 1, then 30,000 steps each depending on the one before: none of them can be
        // sorted, only the first two form a cycle.
        let n = 30_000;
        let mut deps: Vec<Vec<usize>> = (0..n).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect();
        deps[0] = vec![1];
        let started = std::time::Instant::now();
        assert_eq!(cycles(&deps), vec![vec![0, 1]]);
        assert_eq!(topological_order(&deps).len(), n);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn an_acyclic_graph_has_no_cycles() {
        let deps = vec![vec![], vec![0], vec![0, 1]];
        assert!(cycles(&deps).is_empty());
    }
}
