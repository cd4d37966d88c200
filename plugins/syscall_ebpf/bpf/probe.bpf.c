// SPDX-License-Identifier: GPL-2.0
// falconet's syscall probe (CO-RE): one compact record per system call, written at its exit with
// the return value, into a BPF ring buffer.
//
// Which syscalls are captured, and how each parameter is read, is data: user space fills the
// array map `sc_table` (index: x86_64 syscall number; 1000+: non-syscall events) from the event
// table in falconet_syscall_ebpf/syscalls.py. An entry without DESC_ENABLED is skipped at the
// first instructions of the programs: that is the kernel-side selection.
//
// Parameters are read from the syscall's registers at exit (they still hold the arguments),
// except for execve/execveat (DESC_STASH: read at enter, when the old image's memory still
// exists, kept per thread in `stash` and emitted at exit) and exit/exit_group (DESC_AT_ENTER:
// they never return). The record layout is documented in ../README.md (PROBE_VERSION 1).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define NR_SLOTS 1024
#define NR_PROCEXIT 1000
#define MAX_P 8
#define BUF_SIZE 24576
#define OFF_MASK 16383     /* records are at most OFF_MASK bytes */
#define STASH_SIZE 16384
#define STR_MAX 4096
#define ARGV_MAX 4096      /* execve args: total bytes */
#define ARGV_COUNT 64
#define ADDR_MAX 128
#define HDR_SIZE 64
#define ABSENT 0xFFFF
#define ARG_RET 6

#define DESC_ENABLED 1
#define DESC_AT_ENTER 2
#define DESC_STASH 4

#define K_RET 0
#define K_ARG 1
#define K_STR 2
#define K_SOCKADDR 3       /* user sockaddr at arg, length: value of arg `aux` */
#define K_SOCKADDR_PLEN 4  /* user sockaddr at arg, length: u32 at the user pointer arg `aux` */
#define K_TUPLE 5          /* socket of fd arg (ARG_RET: the return value); aux: see tuple_mode */
#define K_ARGV 6           /* aux 0: argv[0]; aux 1: argv[1..] joined by NULs */
#define K_USER_U64 7       /* u64 at user pointer arg + 8 * aux */
#define K_NR 8             /* the syscall number */

#define TUPLE_INBOUND 1    /* remote -> local (accept, recv*); else local -> remote */
#define TUPLE_ADDR_SHIFT 1 /* where a remote address given by the caller is: */
#define TUPLE_ADDR_NONE 0
#define TUPLE_ADDR_SENDTO 1   /* arg 4, length arg 5 */
#define TUPLE_ADDR_RECVFROM 2 /* arg 4, length at user pointer arg 5 */
#define TUPLE_ADDR_MSGHDR 3   /* struct user_msghdr at arg 1 */

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

struct sc_desc {
	__u8 flags;
	__u8 nparams;
	__u8 pad[2];
	__u8 kind[MAX_P];
	__u8 arg[MAX_P];
	__u8 aux[MAX_P];
	__u8 pad2[4];
};

struct rec_hdr {
	__u16 nr;
	__u8 dir;
	__u8 nparams;
	__u16 len;
	__u16 cpu;
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 reserved;
	__s64 ret;
	char comm[16];
};

struct scratch {
	__u64 args[8];
	__u8 buf[BUF_SIZE];
};

struct stash_rec {
	__u8 buf[STASH_SIZE];
};

#define RING_BYTES (8 * 1024 * 1024)
#define WAKEUP_BYTES (RING_BYTES / 4)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, struct sc_desc);
} sc_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct stash_rec);
} stash SEC(".maps");

// key 0: emitted records, key 1: records lost because the ring buffer was full
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// key 0: the thread group id whose syscalls are not captured (the consumer itself)
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} probe_cfg SEC(".maps");

static __always_inline void bump(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &key);
	if (v)
		(*v)++;
}

static __always_inline int ignored(__u32 tgid)
{
	__u32 zero = 0;
	__u32 *ign = bpf_map_lookup_elem(&probe_cfg, &zero);
	return ign && *ign == tgid;
}

static __always_inline void put_u16(__u8 *buf, __u32 off, __u16 v)
{
	*(__u16 *)&buf[off & OFF_MASK] = v;
}

static __always_inline void fill_header(struct rec_hdr *h, __u32 nr, __u8 dir, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();
	struct task_struct *task = bpf_get_current_task_btf();
	h->nr = nr;
	h->dir = dir;
	h->cpu = bpf_get_smp_processor_id();
	h->ts = bpf_ktime_get_boot_ns();
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = task->real_parent->tgid;
	h->uid = (__u32)ug;
	h->gid = ug >> 32;
	h->reserved = 0;
	h->ret = ret;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

static __always_inline __u32 put_absent(__u8 *buf, __u32 off)
{
	put_u16(buf, off, ABSENT);
	return off + 2;
}

static __always_inline __u32 put_int(__u8 *buf, __u32 off, __u64 v)
{
	put_u16(buf, off, 8);
	*(__u64 *)&buf[(off + 2) & OFF_MASK] = v;
	return off + 10;
}

static __always_inline __u32 put_user_str(__u8 *buf, __u32 off, __u64 ptr, __u32 lim)
{
	if (!ptr || off + 2 + STR_MAX > lim)
		return put_absent(buf, off);
	long n = bpf_probe_read_user_str(&buf[(off + 2) & OFF_MASK], STR_MAX, (void *)ptr);
	if (n <= 0)
		return put_absent(buf, off);
	n -= 1; // without the NUL
	put_u16(buf, off, (__u16)n);
	return off + 2 + (n & (STR_MAX - 1));
}

static __always_inline __u32 put_user_bytes(__u8 *buf, __u32 off, __u64 ptr, __u64 len)
{
	if (!ptr || len == 0)
		return put_absent(buf, off);
	if (len > ADDR_MAX)
		len = ADDR_MAX;
	__u32 n = len & (ADDR_MAX * 2 - 1);
	if (n > ADDR_MAX)
		n = ADDR_MAX;
	if (bpf_probe_read_user(&buf[(off + 2) & OFF_MASK], n, (void *)ptr))
		return put_absent(buf, off);
	put_u16(buf, off, (__u16)n);
	return off + 2 + n;
}

static __always_inline struct sock *fd_sock(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd < 0 || fd >= max)
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != file)
		return 0;
	return BPF_CORE_READ(sock, sk);
}

// The caller's own address for the remote end (sendto to an unconnected socket, the source of a
// datagram...): copied into `sa` (ADDR_MAX bytes); returns its length or 0.
static __always_inline __u32 caller_addr(__u64 *args, __u32 mode, __u8 *sa)
{
	__u64 ptr = 0, len = 0;
	if (mode == TUPLE_ADDR_SENDTO) {
		ptr = args[4];
		len = args[5];
	} else if (mode == TUPLE_ADDR_RECVFROM) {
		__u32 l = 0;
		ptr = args[4];
		if (!args[5] || bpf_probe_read_user(&l, sizeof(l), (void *)args[5]))
			return 0;
		len = l;
	} else if (mode == TUPLE_ADDR_MSGHDR) {
		struct { __u64 name; __u32 namelen; } m = {};
		if (!args[1] || bpf_probe_read_user(&m, sizeof(m), (void *)args[1]))
			return 0;
		ptr = m.name;
		len = m.namelen;
	}
	if (!ptr || !len)
		return 0;
	if (len > ADDR_MAX)
		len = ADDR_MAX;
	__u32 n = len & (ADDR_MAX * 2 - 1);
	if (n > ADDR_MAX)
		n = ADDR_MAX;
	if (bpf_probe_read_user(sa, n, (void *)ptr))
		return 0;
	return n;
}

// Tuple: u8 family; inet/inet6: u8 src[16], u8 dst[16], u16 sport, u16 dport (host order);
// unix: the path of the caller's address, when there is one.
__noinline int put_tuple(struct scratch *s, __u32 off, __u32 argi, __u32 aux)
{
	if (!s) // global functions are verified alone: their pointer arguments may be NULL
		return off;
	__u8 *buf = s->buf;
	long fd = (long)s->args[argi & 7];
	struct sock *sk = fd_sock(fd);
	if (!sk)
		return put_absent(buf, off);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u8 *t = &buf[(off + 2) & OFF_MASK];
	__u8 sa[ADDR_MAX] = {};
	__u32 salen = caller_addr(s->args, (aux >> TUPLE_ADDR_SHIFT) & 3, sa);
	int inbound = aux & TUPLE_INBOUND;
	__u8 *src = t + 1, *dst = t + 17;
	__u16 lport = 0, rport = 0;
	__builtin_memset(t, 0, 37);
	t[0] = family;
	if (family == AF_INET) {
		__u32 la = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 ra = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		if (!ra && salen >= 8 && *(__u16 *)sa == AF_INET) {
			ra = *(__u32 *)&sa[4];
			rport = bpf_ntohs(*(__u16 *)&sa[2]);
		}
		__builtin_memcpy(inbound ? dst : src, &la, 4);
		__builtin_memcpy(inbound ? src : dst, &ra, 4);
	} else if (family == AF_INET6) {
		struct in6_addr la = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);
		struct in6_addr ra = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);
		lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		if (!rport && salen >= 24 && *(__u16 *)sa == AF_INET6) {
			__builtin_memcpy(&ra, &sa[8], 16);
			rport = bpf_ntohs(*(__u16 *)&sa[2]);
		}
		__builtin_memcpy(inbound ? dst : src, &la, 16);
		__builtin_memcpy(inbound ? src : dst, &ra, 16);
	} else if (family == AF_UNIX) {
		__u32 n = 0;
		if (salen > 2 && *(__u16 *)sa == AF_UNIX) {
			n = (salen - 2) & (ADDR_MAX - 1);
			__builtin_memcpy(t + 1, sa + 2, ADDR_MAX - 2);
		}
		put_u16(buf, off, (__u16)(1 + n));
		return off + 2 + 1 + n;
	} else {
		put_u16(buf, off, 1);
		return off + 3;
	}
	*(__u16 *)(t + 33) = inbound ? rport : lport;
	*(__u16 *)(t + 35) = inbound ? lport : rport;
	put_u16(buf, off, 37);
	return off + 2 + 37;
}

__noinline int put_argv(struct scratch *s, __u32 off, __u32 argi, __u32 aux, __u32 lim)
{
	if (!s)
		return off;
	__u8 *buf = s->buf;
	const char *const *argv = (const char *const *)s->args[argi & 7];
	if (!argv)
		return put_absent(buf, off);
	if (aux == 0) {
		const char *p = 0;
		if (bpf_probe_read_user(&p, sizeof(p), &argv[0]) || !p)
			return put_absent(buf, off);
		return put_user_str(buf, off, (__u64)p, lim);
	}
	if (off + 2 + ARGV_MAX + STR_MAX > lim)
		return put_absent(buf, off);
	__u32 used = 0;
	for (int i = 1; i < ARGV_COUNT; i++) {
		const char *p = 0;
		if (bpf_probe_read_user(&p, sizeof(p), &argv[i]) || !p)
			break;
		if (used >= ARGV_MAX)
			break;
		long n = bpf_probe_read_user_str(&buf[(off + 2 + used) & OFF_MASK], STR_MAX, p);
		if (n <= 0)
			break;
		used += n & (STR_MAX - 1);
		if (used > ARGV_MAX)
			used = ARGV_MAX;
	}
	put_u16(buf, off, (__u16)used);
	return off + 2 + used;
}

// spec: kind | arg << 8 | aux << 16 (BPF calls take at most five arguments)
__noinline int put_param(struct scratch *s, __u32 off, __u32 spec, __u32 lim)
{
	__u32 kind = spec & 0xff, argi = (spec >> 8) & 0xff, aux = (spec >> 16) & 0xff;
	if (!s)
		return off;
	__u8 *buf = s->buf;
	__u64 v = s->args[argi & 7];
	switch (kind) {
	case K_RET:
		return put_int(buf, off, s->args[ARG_RET]);
	case K_ARG:
		return put_int(buf, off, v);
	case K_NR:
		return put_int(buf, off, s->args[7]);
	case K_STR:
		return put_user_str(buf, off, v, lim);
	case K_SOCKADDR:
		return put_user_bytes(buf, off, v, s->args[aux & 7]);
	case K_SOCKADDR_PLEN: {
		__u32 l = 0;
		__u64 lp = s->args[aux & 7];
		if (!lp || bpf_probe_read_user(&l, sizeof(l), (void *)lp))
			return put_absent(buf, off);
		return put_user_bytes(buf, off, v, l);
	}
	case K_TUPLE:
		return put_tuple(s, off, argi, aux);
	case K_ARGV:
		return put_argv(s, off, argi, aux, lim);
	case K_USER_U64: {
		__u64 x = 0;
		if (!v || bpf_probe_read_user(&x, sizeof(x), (void *)(v + 8 * (aux & 7))))
			return put_absent(buf, off);
		return put_int(buf, off, x);
	}
	}
	return put_absent(buf, off);
}

// Reads the parameters the descriptor lists into s->buf after the header; returns the length.
static __always_inline __u32 build(struct scratch *s, struct sc_desc *d, __u32 lim)
{
	__u32 off = HDR_SIZE;
	__u32 n = d->nparams;
	for (int i = 0; i < MAX_P; i++) {
		if (i >= n)
			break;
		off = put_param(s, off & OFF_MASK, d->kind[i] | d->arg[i] << 8 | d->aux[i] << 16, lim);
	}
	((struct rec_hdr *)s->buf)->nparams = n;
	return off & OFF_MASK;
}

static __always_inline void load_args(struct scratch *s, struct pt_regs *regs, long ret, long id)
{
	s->args[0] = regs->di;
	s->args[1] = regs->si;
	s->args[2] = regs->dx;
	s->args[3] = regs->r10;
	s->args[4] = regs->r8;
	s->args[5] = regs->r9;
	s->args[ARG_RET] = ret;
	s->args[7] = id;
}

// The reader is not woken for each record (a wake-up is an inter-processor interrupt, which
// costs the writer more than the record itself): it looks every few milliseconds, and is woken
// only when the ring buffer is filling up.
static __always_inline void output(void *data, __u32 len)
{
	len &= OFF_MASK;
	__u64 wake = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES
		? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bump(bpf_ringbuf_output(&events, data, len, wake) ? 1 : 0);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	if ((unsigned long)id >= NR_SLOTS)
		return 0;
	__u32 key = id;
	struct sc_desc *d = bpf_map_lookup_elem(&sc_table, &key);
	if (!d || !(d->flags & DESC_ENABLED) || !(d->flags & (DESC_AT_ENTER | DESC_STASH)))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (ignored(pid_tgid >> 32))
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return 0;
	load_args(s, regs, 0, id);
	if (d->flags & DESC_AT_ENTER) {
		__u32 len = build(s, d, OFF_MASK);
		struct rec_hdr *h = (struct rec_hdr *)s->buf;
		fill_header(h, id, 1, 0);
		h->len = len;
		output(s->buf, len);
		return 0;
	}
	__u32 len = build(s, d, STASH_SIZE - 1);
	struct rec_hdr *h = (struct rec_hdr *)s->buf;
	h->nr = id;
	h->len = len;
	__u32 tid = (__u32)pid_tgid;
	bpf_map_update_elem(&stash, &tid, s->buf, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	long id = regs->orig_ax;
	if ((unsigned long)id >= NR_SLOTS)
		return 0;
	__u32 key = id;
	struct sc_desc *d = bpf_map_lookup_elem(&sc_table, &key);
	if (!d || !(d->flags & DESC_ENABLED) || (d->flags & DESC_AT_ENTER))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (ignored(pid_tgid >> 32))
		return 0;
	if (d->flags & DESC_STASH) {
		__u32 tid = (__u32)pid_tgid;
		struct stash_rec *e = bpf_map_lookup_elem(&stash, &tid);
		if (!e)
			return 0;
		struct rec_hdr *h = (struct rec_hdr *)e->buf;
		__u32 len = h->len;
		fill_header(h, h->nr, 0, ret);
		h->len = len;
		if (len > STASH_SIZE - 1)
			len = STASH_SIZE - 1;
		output(e->buf, len);
		bpf_map_delete_elem(&stash, &tid);
		return 0;
	}
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return 0;
	load_args(s, regs, ret, id);
	__u32 len = build(s, d, OFF_MASK);
	struct rec_hdr *h = (struct rec_hdr *)s->buf;
	fill_header(h, id, 0, ret);
	h->len = len;
	output(s->buf, len);
	return 0;
}

// A thread that is not the group leader calling execve takes the leader's tid: its stashed
// parameters move with it.
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 old = old_pid;
	if (old == tid)
		return 0;
	struct stash_rec *e = bpf_map_lookup_elem(&stash, &old);
	if (!e)
		return 0;
	bpf_map_update_elem(&stash, &tid, e, BPF_ANY);
	bpf_map_delete_elem(&stash, &old);
	return 0;
}

// procexit: status, ret (exit status), sig, core.
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 gone = BPF_CORE_READ(p, pid);
	bpf_map_delete_elem(&stash, &gone); // an execve that never returned (killed meanwhile)
	__u32 key = NR_PROCEXIT;
	struct sc_desc *d = bpf_map_lookup_elem(&sc_table, &key);
	if (!d || !(d->flags & DESC_ENABLED))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (ignored(pid_tgid >> 32))
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return 0;
	__s64 code = BPF_CORE_READ(p, exit_code);
	__u8 *buf = s->buf;
	__u32 off = HDR_SIZE;
	off = put_int(buf, off, code);
	off = put_int(buf, off, (code >> 8) & 0xff);
	off = put_int(buf, off, code & 0x7f);
	off = put_int(buf, off, (code >> 7) & 1);
	struct rec_hdr *h = (struct rec_hdr *)buf;
	fill_header(h, NR_PROCEXIT, 1, 0); // upstream's procexit is an enter event
	h->nparams = 4;
	h->len = off;
	output(buf, off);
	return 0;
}

// A new task: whatever an earlier task with the same tid left in `stash` is not its own.
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 tid = BPF_CORE_READ(child, pid);
	bpf_map_delete_elem(&stash, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
