//! Answers for names in the cluster zone and for reverse lookups, per
//! the Kubernetes DNS specification, with CoreDNS's choices where the
//! specification leaves room (TTL 5, NXDOMAIN vs NODATA, SOA in the
//! authority section of negative answers).

use std::net::Ipv4Addr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, CNAME, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::index::{dashed, undashed, Index, Kind};

/// CoreDNS's default TTL for cluster records.
pub(crate) const TTL: u32 = 5;

/// What the cluster zone says about one question.
#[derive(Debug)]
pub(crate) struct Reply {
    pub code: ResponseCode,
    pub answers: Vec<Record>,
    pub additionals: Vec<Record>,
    /// Negative answers carry the zone's SOA.
    pub soa: Option<Record>,
}

/// `None`: not ours, forward it.
pub(crate) fn answer(
    index: &Index,
    domain: &str,
    qname: &Name,
    qtype: RecordType,
) -> Option<Reply> {
    let mut lower = qname.to_ascii();
    lower.make_ascii_lowercase();
    let name = lower.trim_end_matches('.');
    if let Some(rest) = zone_rest(name, domain) {
        return Some(in_zone(index, domain, qname, qtype, rest));
    }
    let ip = reverse_ip(name)?;
    let names = index.reverse(ip);
    if names.is_empty() {
        // Reverse names of other addresses go upstream (CoreDNS's fallthrough).
        return None;
    }
    let mut reply = Reply::new(ResponseCode::NoError);
    if matches!(qtype, RecordType::PTR | RecordType::ANY) {
        for n in names {
            if let Ok(target) = Name::from_ascii(format!("{n}.{domain}.")) {
                reply.answers.push(Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                ));
            }
        }
    }
    Some(reply.negative_soa(domain))
}

/// The labels in front of the domain: `Some("")` for the apex.
fn zone_rest<'a>(name: &'a str, domain: &str) -> Option<&'a str> {
    if name == domain {
        return Some("");
    }
    let rest = name.strip_suffix(domain)?;
    rest.strip_suffix('.')
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
fn reverse_ip(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut octets = [0u8; 4];
    let mut parts = rest.split('.');
    for o in octets.iter_mut().rev() {
        let p = parts.next()?;
        if p.len() > 1 && p.starts_with('0') {
            return None;
        }
        *o = p.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

impl Reply {
    fn new(code: ResponseCode) -> Self {
        Reply {
            code,
            answers: Vec::new(),
            additionals: Vec::new(),
            soa: None,
        }
    }

    fn nxdomain(domain: &str) -> Self {
        Reply::new(ResponseCode::NXDomain).negative_soa(domain)
    }

    fn negative_soa(mut self, domain: &str) -> Self {
        if self.answers.is_empty() {
            self.soa = soa(domain);
        }
        self
    }
}

fn soa(domain: &str) -> Option<Record> {
    let zone = Name::from_ascii(format!("{domain}.")).ok()?;
    let mname = Name::from_ascii(format!("ns.dns.{domain}.")).ok()?;
    let rname = Name::from_ascii(format!("hostmaster.{domain}.")).ok()?;
    let serial = 1;
    let data = SOA::new(mname, rname, serial, 7200, 1800, 86400, TTL);
    Some(Record::from_rdata(zone, TTL, RData::SOA(data)))
}

fn a(owner: &Name, ip: Ipv4Addr) -> Record {
    Record::from_rdata(owner.clone(), TTL, RData::A(A(ip)))
}

fn in_zone(index: &Index, domain: &str, qname: &Name, qtype: RecordType, rest: &str) -> Reply {
    let labels: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('.').collect()
    };
    match labels.as_slice() {
        [] => {
            let mut reply = Reply::new(ResponseCode::NoError);
            if matches!(qtype, RecordType::SOA | RecordType::ANY) {
                reply.answers.extend(soa(domain));
            }
            reply.negative_soa(domain)
        }
        ["dns-version"] => {
            let mut reply = Reply::new(ResponseCode::NoError);
            if qtype == RecordType::TXT {
                let txt = TXT::new(vec!["1.1.0".to_string()]);
                reply
                    .answers
                    .push(Record::from_rdata(qname.clone(), TTL, RData::TXT(txt)));
            }
            reply.negative_soa(domain)
        }
        ["svc"] | ["pod"] => Reply::new(ResponseCode::NoError).negative_soa(domain),
        [ns, "svc"] | [ns, "pod"] => {
            if index.has_namespace(ns) {
                Reply::new(ResponseCode::NoError).negative_soa(domain)
            } else {
                Reply::nxdomain(domain)
            }
        }
        [ip, _ns, "pod"] => match undashed(ip) {
            Some(ip) => {
                let mut reply = Reply::new(ResponseCode::NoError);
                if matches!(qtype, RecordType::A | RecordType::ANY) {
                    reply.answers.push(a(qname, ip));
                }
                reply.negative_soa(domain)
            }
            None => Reply::nxdomain(domain),
        },
        [svc, ns, "svc"] => service(index, domain, qname, qtype, svc, ns),
        [host, svc, ns, "svc"] => endpoint(index, domain, qname, qtype, host, svc, ns),
        [port, proto, svc, ns, "svc"] => match (port.strip_prefix('_'), proto.strip_prefix('_')) {
            (Some(port), Some(proto)) => {
                srv(index, domain, qname, qtype, Some((port, proto)), svc, ns)
            }
            _ => Reply::nxdomain(domain),
        },
        _ => Reply::nxdomain(domain),
    }
}

fn key(svc: &str, ns: &str) -> String {
    let mut k = String::with_capacity(svc.len() + ns.len() + 1);
    k.push_str(svc);
    k.push('.');
    k.push_str(ns);
    k
}

fn service(
    index: &Index,
    domain: &str,
    qname: &Name,
    qtype: RecordType,
    svc: &str,
    ns: &str,
) -> Reply {
    let k = key(svc, ns);
    let Some(service) = index.service(&k) else {
        return Reply::nxdomain(domain);
    };
    let mut reply = Reply::new(ResponseCode::NoError);
    match (&service.kind, qtype) {
        (Kind::ExternalName(target), _) => {
            if let Ok(t) = Name::from_ascii(format!("{target}.")) {
                reply.answers.push(Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::CNAME(CNAME(t)),
                ));
            }
        }
        (_, RecordType::SRV) => return srv(index, domain, qname, qtype, None, svc, ns),
        (Kind::ClusterIp(ip), RecordType::A | RecordType::ANY) => reply.answers.push(a(qname, *ip)),
        (Kind::Headless, RecordType::A | RecordType::ANY) => {
            let mut any = false;
            for (ep, _) in index.endpoints(&k, service) {
                any = true;
                reply.answers.push(a(qname, ep.ip));
            }
            // A headless service without endpoints has no name (CoreDNS).
            if !any {
                return Reply::nxdomain(domain);
            }
        }
        (Kind::Headless, _) if index.endpoints(&k, service).next().is_none() => {
            return Reply::nxdomain(domain);
        }
        _ => {}
    }
    reply.negative_soa(domain)
}

/// `host.svc.ns.svc`: an endpoint of a headless service by hostname, or
/// by its address with dashes.
fn endpoint(
    index: &Index,
    domain: &str,
    qname: &Name,
    qtype: RecordType,
    host: &str,
    svc: &str,
    ns: &str,
) -> Reply {
    let k = key(svc, ns);
    let Some(service) = index.service(&k) else {
        return Reply::nxdomain(domain);
    };
    let by_ip = undashed(host);
    let mut found = false;
    let mut reply = Reply::new(ResponseCode::NoError);
    for (ep, _) in index.endpoints(&k, service) {
        if ep.hostname.as_deref() == Some(host) || by_ip == Some(ep.ip) {
            found = true;
            if matches!(qtype, RecordType::A | RecordType::ANY) {
                reply.answers.push(a(qname, ep.ip));
            }
        }
    }
    if !found {
        return Reply::nxdomain(domain);
    }
    reply.negative_soa(domain)
}

/// SRV for one named port (`_port._proto`) or every port (`None`).
fn srv(
    index: &Index,
    domain: &str,
    qname: &Name,
    qtype: RecordType,
    port: Option<(&str, &str)>,
    svc: &str,
    ns: &str,
) -> Reply {
    let k = key(svc, ns);
    let Some(service) = index.service(&k) else {
        return Reply::nxdomain(domain);
    };
    let wanted = |name: &str, proto: &str| match port {
        Some((p, pr)) => !name.is_empty() && p == name && pr == proto,
        None => true,
    };
    let mut reply = Reply::new(ResponseCode::NoError);
    let mut found = false;
    let want_srv = matches!(qtype, RecordType::SRV | RecordType::ANY);
    match &service.kind {
        Kind::ClusterIp(ip) => {
            let target = Name::from_ascii(format!("{k}.svc.{domain}."));
            for p in service
                .ports
                .iter()
                .filter(|p| wanted(&p.name, &p.protocol))
            {
                found = true;
                if let (true, Ok(t)) = (want_srv, &target) {
                    let data = SRV::new(0, 100, p.port, t.clone());
                    reply
                        .answers
                        .push(Record::from_rdata(qname.clone(), TTL, RData::SRV(data)));
                }
            }
            if let (true, true, Ok(t)) = (found, want_srv, &target) {
                reply.additionals.push(a(t, *ip));
            }
        }
        Kind::Headless => {
            let eps: Vec<_> = index.endpoints(&k, service).collect();
            for (ep, ports) in &eps {
                for p in ports.iter().filter(|p| wanted(&p.name, &p.protocol)) {
                    found = true;
                    if !want_srv {
                        continue;
                    }
                    let host = ep.hostname.clone().unwrap_or_else(|| dashed(ep.ip));
                    let Ok(t) = Name::from_ascii(format!("{host}.{k}.svc.{domain}.")) else {
                        continue;
                    };
                    let weight = (100 / eps.len().max(1)) as u16;
                    let data = SRV::new(0, weight.max(1), p.port, t.clone());
                    reply
                        .answers
                        .push(Record::from_rdata(qname.clone(), TTL, RData::SRV(data)));
                    reply.additionals.push(a(&t, ep.ip));
                }
            }
        }
        Kind::ExternalName(_) => {}
    }
    if !found && port.is_some() {
        return Reply::nxdomain(domain);
    }
    reply.negative_soa(domain)
}
