//! The kernel side over rtnetlink: the VXLAN device, its FDB and
//! neighbour entries, and routes to other nodes' pod networks. The
//! netlink socket belongs to the network namespace of the thread that
//! opened it (tests open it inside a namespace of their own).
//!
//! Ours are: the instance-named device and everything on it, and routes
//! of the main table carrying our protocol number inside the cluster CIDR.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, LinkVxlan, RouteMessageBuilder};

use super::model::{Current, Mac, Route, Subnet, PORT, VNI};
use super::Error;

/// Our routes carry this protocol number (`ip route ... proto 157`), so a
/// resync can tell them from anyone else's.
const PROTO: u8 = 157;

fn nl(what: &str) -> impl Fn(rtnetlink::Error) -> Error + '_ {
    move |e| Error::Netlink(format!("{what}: {e}"))
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

/// The VXLAN device as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub local: Ipv4Addr,
    /// The link carrying the encapsulated packets.
    pub parent: Option<u32>,
    pub mtu: u32,
    pub mac: Mac,
    /// The network address of the own podCIDR, as a /32.
    pub address: Ipv4Addr,
}

/// A link holding an address.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub index: u32,
    pub mtu: u32,
    pub address: Ipv4Addr,
}

pub struct Kernel {
    handle: Handle,
    cluster: Subnet,
}

impl Kernel {
    /// Opens a netlink connection in the calling thread's namespace; its
    /// I/O task runs on the current runtime.
    pub fn connect(cluster: Subnet) -> Result<Kernel, Error> {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| Error::Netlink(format!("opening a netlink socket: {e}")))?;
        tokio::spawn(conn);
        Ok(Kernel { handle, cluster })
    }

    async fn links(&self) -> Result<Vec<LinkMessage>, Error> {
        self.handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl("listing links"))
    }

    async fn addresses(&self) -> Result<Vec<AddressMessage>, Error> {
        self.handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl("listing addresses"))
    }

    /// The link holding `ip` (None when no link does).
    pub async fn link_with(&self, ip: Ipv4Addr) -> Result<Option<Link>, Error> {
        let index = self
            .addresses()
            .await?
            .iter()
            .find(|a| ipv4s(a).any(|x| x == ip))
            .map(|a| a.header.index);
        let Some(index) = index else {
            return Ok(None);
        };
        let mtu = self
            .links()
            .await?
            .iter()
            .find(|l| l.header.index == index)
            .and_then(mtu_of)
            .unwrap_or(1500);
        Ok(Some(Link {
            index,
            mtu,
            address: ip,
        }))
    }

    /// `--flannel-iface`: the link and its first IPv4 address.
    pub async fn link_named(&self, name: &str) -> Result<Link, Error> {
        let links = self.links().await?;
        let link = links
            .iter()
            .find(|l| name_of(l) == Some(name))
            .ok_or_else(|| Error::Iface(name.to_string(), "no such interface".into()))?;
        let index = link.header.index;
        let address = self
            .addresses()
            .await?
            .iter()
            .filter(|a| a.header.index == index)
            .find_map(|a| ipv4s(a).next())
            .ok_or_else(|| Error::Iface(name.to_string(), "it has no IPv4 address".into()))?;
        Ok(Link {
            index,
            mtu: mtu_of(link).unwrap_or(1500),
            address,
        })
    }

    async fn device_link(&self, name: &str) -> Result<Option<LinkMessage>, Error> {
        Ok(self
            .links()
            .await?
            .into_iter()
            .find(|l| name_of(l) == Some(name)))
    }

    /// Creates or repairs the device; returns its index.
    pub async fn ensure_device(&self, want: &Device) -> Result<u32, Error> {
        let existing = self.device_link(&want.name).await?;
        let index = match existing {
            Some(l) if vxlan_matches(&l, want) => {
                let up = l.header.flags.contains(LinkFlags::Up);
                let mac_ok = l
                    .attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::Address(m) if m.as_slice() == want.mac));
                if !up || !mac_ok || mtu_of(&l) != Some(want.mtu) {
                    let msg = LinkUnspec::new_with_index(l.header.index)
                        .mtu(want.mtu)
                        .address(want.mac.to_vec())
                        .up()
                        .build();
                    self.handle
                        .link()
                        .set(msg)
                        .execute()
                        .await
                        .map_err(nl("setting the vxlan device"))?;
                }
                l.header.index
            }
            other => {
                if let Some(l) = other {
                    tracing::info!(
                        device = want.name,
                        "replacing a vxlan device of other settings"
                    );
                    self.delete_link(l.header.index).await?;
                }
                self.create_device(want).await?
            }
        };
        self.ensure_address(index, want.address).await?;
        Ok(index)
    }

    async fn create_device(&self, want: &Device) -> Result<u32, Error> {
        let mut b = LinkVxlan::new(&want.name, VNI)
            .port(PORT)
            .local(want.local)
            .learning(false);
        if let Some(parent) = want.parent {
            b = b.dev(parent);
        }
        let msg = b.mtu(want.mtu).address(want.mac.to_vec()).up().build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(nl("creating the vxlan device"))?;
        let l = self
            .device_link(&want.name)
            .await?
            .ok_or_else(|| Error::Netlink("the new vxlan device is missing".into()))?;
        tracing::info!(device = want.name, local = %want.local, mtu = want.mtu, "vxlan device created");
        Ok(l.header.index)
    }

    /// Exactly `address`/32 as the device's IPv4 address.
    async fn ensure_address(&self, index: u32, address: Ipv4Addr) -> Result<(), Error> {
        let mut present = false;
        for a in self.addresses().await? {
            if a.header.index != index || a.header.family != AddressFamily::Inet {
                continue;
            }
            if a.header.prefix_len == 32 && ipv4s(&a).any(|x| x == address) {
                present = true;
            } else {
                self.handle
                    .address()
                    .del(a)
                    .execute()
                    .await
                    .map_err(nl("removing a stale vxlan address"))?;
            }
        }
        if !present {
            self.handle
                .address()
                .add(index, IpAddr::V4(address), 32)
                .execute()
                .await
                .map_err(nl("adding the vxlan address"))?;
        }
        Ok(())
    }

    /// The device's index, if it exists.
    pub async fn device_index(&self, name: &str) -> Result<Option<u32>, Error> {
        Ok(self.device_link(name).await?.map(|l| l.header.index))
    }

    /// Removes the device (and with it its FDB, neighbours and routes).
    pub async fn delete_device(&self, name: &str) -> Result<(), Error> {
        if let Some(index) = self.device_index(name).await? {
            self.delete_link(index).await?;
            tracing::info!(device = name, "vxlan device removed");
        }
        Ok(())
    }

    async fn delete_link(&self, index: u32) -> Result<(), Error> {
        match self.handle.link().del(index).execute().await {
            Err(e) if errno(&e) != Some(nix::libc::ENODEV) => {
                Err(nl("removing the vxlan device")(e))
            }
            _ => Ok(()),
        }
    }

    /// What the kernel holds of ours (`device`: the VXLAN device's index).
    pub async fn current(&self, device: Option<u32>) -> Result<Current, Error> {
        let mut cur = Current::default();
        if let Some(dev) = device {
            let fdb: Vec<NeighbourMessage> = self
                .handle
                .neighbours()
                .get()
                .set_address_family(AddressFamily::Bridge)
                .execute()
                .try_collect()
                .await
                .map_err(nl("listing fdb entries"))?;
            for m in fdb.iter().filter(|m| m.header.ifindex == dev) {
                if let (Some(mac), Some(ip)) = (neigh_mac(m), neigh_ip(m)) {
                    cur.fdb.insert((mac, ip));
                }
            }
            let neigh: Vec<NeighbourMessage> = self
                .handle
                .neighbours()
                .get()
                .set_address_family(AddressFamily::Inet)
                .execute()
                .try_collect()
                .await
                .map_err(nl("listing neighbours"))?;
            for m in neigh.iter().filter(|m| m.header.ifindex == dev) {
                if let Some(ip) = neigh_ip(m) {
                    let permanent = m.header.state == NeighbourState::Permanent;
                    cur.neigh
                        .insert(ip, (neigh_mac(m).unwrap_or([0; 6]), permanent));
                }
            }
        }
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(nl("listing routes"))?;
        for r in &routes {
            if r.header.table != RouteHeader::RT_TABLE_MAIN
                || r.header.protocol != RouteProtocol::Other(PROTO)
            {
                continue;
            }
            let (Some(dst), Some(gateway)) = (route_dst(r), route_gw(r)) else {
                continue;
            };
            if !self.cluster.covers(&dst) {
                continue;
            }
            let oif = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            let via_device = device.is_some() && oif == device;
            cur.routes.insert(
                dst,
                Route {
                    gateway,
                    via_device,
                },
            );
        }
        Ok(cur)
    }

    pub async fn del_route(&self, dst: Subnet, route: Route) -> Result<(), Error> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst.addr, dst.len)
            .gateway(route.gateway)
            .protocol(RouteProtocol::Other(PROTO))
            .build();
        match self.handle.route().del(msg).execute().await {
            Err(e) if errno(&e) != Some(nix::libc::ESRCH) => Err(nl("removing a route")(e)),
            _ => Ok(()),
        }
    }

    pub async fn set_route(
        &self,
        dst: Subnet,
        route: Route,
        device: Option<u32>,
    ) -> Result<(), Error> {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst.addr, dst.len)
            .gateway(route.gateway)
            .protocol(RouteProtocol::Other(PROTO));
        if route.via_device {
            let dev = device.ok_or_else(|| Error::Netlink("no vxlan device".into()))?;
            b = b.output_interface(dev).onlink();
        }
        self.handle
            .route()
            .add(b.build())
            .replace()
            .execute()
            .await
            .map_err(nl(&format!("adding the route to {dst}")))
    }

    pub async fn del_neigh(&self, dev: u32, ip: Ipv4Addr) -> Result<(), Error> {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.ifindex = dev;
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        match self.handle.neighbours().del(m).execute().await {
            Err(e) if errno(&e) != Some(nix::libc::ENOENT) => Err(nl("removing a neighbour")(e)),
            _ => Ok(()),
        }
    }

    pub async fn set_neigh(&self, dev: u32, ip: Ipv4Addr, mac: &Mac) -> Result<(), Error> {
        self.handle
            .neighbours()
            .add(dev, IpAddr::V4(ip))
            .link_layer_address(mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(nl("adding a neighbour"))
    }

    pub async fn del_fdb(&self, dev: u32, mac: &Mac, ip: Ipv4Addr) -> Result<(), Error> {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = dev;
        m.header.flags = NeighbourFlags::Own;
        m.header.state = NeighbourState::Permanent;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        match self.handle.neighbours().del(m).execute().await {
            Err(e) if errno(&e) != Some(nix::libc::ENOENT) => Err(nl("removing an fdb entry")(e)),
            _ => Ok(()),
        }
    }

    pub async fn add_fdb(&self, dev: u32, mac: &Mac, ip: Ipv4Addr) -> Result<(), Error> {
        self.handle
            .neighbours()
            .add_bridge(dev, mac)
            .flags(NeighbourFlags::Own)
            .destination(IpAddr::V4(ip))
            .replace()
            .execute()
            .await
            .map_err(nl("adding an fdb entry"))
    }
}

fn name_of(l: &LinkMessage) -> Option<&str> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn mtu_of(l: &LinkMessage) -> Option<u32> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

/// VNI, port, local address and learning as wanted (these cannot change
/// on a live device: a mismatch means re-creating it).
fn vxlan_matches(l: &LinkMessage, want: &Device) -> bool {
    let infos = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => Some(infos),
        _ => None,
    });
    let Some(data) = infos.into_iter().flatten().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vxlan(d)) => Some(d),
        _ => None,
    }) else {
        return false;
    };
    let has = |x: &InfoVxlan| data.contains(x);
    has(&InfoVxlan::Id(VNI))
        && has(&InfoVxlan::Port(PORT))
        && has(&InfoVxlan::Local(want.local))
        && has(&InfoVxlan::Learning(false))
}

fn ipv4s(a: &AddressMessage) -> impl Iterator<Item = Ipv4Addr> + '_ {
    a.attributes.iter().filter_map(|x| match x {
        AddressAttribute::Address(IpAddr::V4(ip)) | AddressAttribute::Local(IpAddr::V4(ip)) => {
            Some(*ip)
        }
        _ => None,
    })
}

fn neigh_mac(m: &NeighbourMessage) -> Option<Mac> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(b) => <Mac>::try_from(b.as_slice()).ok(),
        _ => None,
    })
}

fn neigh_ip(m: &NeighbourMessage) -> Option<Ipv4Addr> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}

fn route_dst(r: &RouteMessage) -> Option<Subnet> {
    let addr = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })?;
    Subnet::new(addr, r.header.destination_prefix_length)
}

fn route_gw(r: &RouteMessage) -> Option<Ipv4Addr> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}
