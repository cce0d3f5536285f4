use super::*;

#[derive(Default)]
struct Count {
    by_kind: BTreeMap<&'static str, u64>,
}

impl Observer for Count {
    fn event(&mut self, _: Time, _: NodeAddr, e: &Event) {
        let k = match e {
            Event::GossipDelivered { .. } => "delivered",
            Event::GossipOriginated { .. } => "originated",
            Event::DuplicateDropped { .. } => "dup",
            Event::NeighbourAdded { .. } => "nadd",
            Event::NeighbourRemoved { .. } => "nrem",
            Event::PeerDeclaredDead { .. } => "dead",
            Event::PeerRemovedBySeed { .. } => "seedrm",
            Event::ConnectionRefused { .. } => "refused",
            Event::LivenessMissed { .. } => "missed",
            Event::Registered { .. } => "registered",
            _ => "other",
        };
        *self.by_kind.entry(k).or_default() += 1;
    }
}

#[test]
fn smoke() {
    let cfg = SimConfig {
        hash_iterations: 1,
        ..SimConfig::default()
    };
    let mut w = World::new(cfg, DigestMemo::new(1)).unwrap();
    let mut c = Count::default();
    w.run(&mut c);
    eprintln!("{:?} {:?} {}", c.by_kind, w.stats(), w.trace_digest());
}
