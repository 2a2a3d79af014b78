// SPDX-License-Identifier: MIT OR Apache-2.0
//
// failover-dns's XDP program: UDP to the DNS port (and, when set, to the served address) goes to
// the AF_XDP socket of its receive queue; everything else passes to the kernel unchanged (TCP,
// ARP and neighbour discovery, other ports, IPv4 fragments and options, IPv6 extension headers,
// VLAN tags, malformed packets: the kernel's own path decides about those).
//
// Self-contained (no kernel or libbpf headers) so that only clang is needed to rebuild it:
//   failover-dns/xdp/build.sh        (checked by failover-dns/tests/xdp_program.rs)
// The loader (src/xdp/program.rs) sets the constants below before loading.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

// The legacy map definition: read by the loader without BTF.
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

#define SEC(name) __attribute__((section(name), used))
#define BPF_MAP_TYPE_XSKMAP 17
#define XDP_PASS 2
#define QUEUES_MAX 256

// The served UDP port.
volatile const __u16 dns_port = 0;
// FILTER_* flags: which families are served, and whether to match the destination address.
volatile const __u32 filter = 0;
// The served IPv4 address when FILTER_V4_ADDRESS is set.
volatile const __u8 ipv4_address[4] = {0};
// The served IPv6 address when FILTER_V6_ADDRESS is set.
volatile const __u8 ipv6_address[16] = {0};

#define FILTER_V4 1
#define FILTER_V6 2
#define FILTER_V4_ADDRESS 4
#define FILTER_V6_ADDRESS 8

// One AF_XDP socket per receive queue, set by the loader.
struct bpf_map_def SEC("maps") xsks = {
	.type = BPF_MAP_TYPE_XSKMAP,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = QUEUES_MAX,
};

static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;

#define ETH_HLEN 14
#define IPV4_HLEN 20
#define IPV6_HLEN 40
#define UDP_HLEN 8
#define DNS_HLEN 12
#define IPPROTO_UDP 17

SEC("xdp")
int xdp_dns(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	const __u8 *udp;
	__u32 ip_payload;

	if (data + ETH_HLEN > end)
		return XDP_PASS;
	__u16 ethertype = (__u16)((data[12] << 8) | data[13]);
	if (ethertype == 0x0800 && (filter & FILTER_V4)) {
		const __u8 *ip = data + ETH_HLEN;
		if (ip + IPV4_HLEN + UDP_HLEN > end)
			return XDP_PASS;
		// Version 4 without options; not a fragment (only DF may be set); UDP.
		if (ip[0] != 0x45 || (ip[6] & 0x3f) != 0 || ip[7] != 0 || ip[9] != IPPROTO_UDP)
			return XDP_PASS;
		if (filter & FILTER_V4_ADDRESS) {
			for (int i = 0; i < 4; i++)
				if (ip[16 + i] != ipv4_address[i])
					return XDP_PASS;
		}
		__u32 total = (ip[2] << 8) | ip[3];
		if (total < IPV4_HLEN + UDP_HLEN || ip + total > end)
			return XDP_PASS;
		ip_payload = total - IPV4_HLEN;
		udp = ip + IPV4_HLEN;
	} else if (ethertype == 0x86dd && (filter & FILTER_V6)) {
		const __u8 *ip = data + ETH_HLEN;
		if (ip + IPV6_HLEN + UDP_HLEN > end)
			return XDP_PASS;
		// Version 6 and UDP right after the fixed header (no extension headers).
		if ((ip[0] >> 4) != 6 || ip[6] != IPPROTO_UDP)
			return XDP_PASS;
		if (filter & FILTER_V6_ADDRESS) {
			for (int i = 0; i < 16; i++)
				if (ip[24 + i] != ipv6_address[i])
					return XDP_PASS;
		}
		ip_payload = (ip[4] << 8) | ip[5];
		if (ip + IPV6_HLEN + ip_payload > end)
			return XDP_PASS;
		udp = ip + IPV6_HLEN;
	} else {
		return XDP_PASS;
	}
	if (((udp[2] << 8) | udp[3]) != dns_port)
		return XDP_PASS;
	// The UDP length agrees with the IP length, and there is a DNS header.
	__u32 udp_len = (udp[4] << 8) | udp[5];
	if (udp_len != ip_payload || udp_len < UDP_HLEN + DNS_HLEN)
		return XDP_PASS;
	// No socket on this queue: the kernel's path (the flags are the fallback action).
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual MIT/GPL";
