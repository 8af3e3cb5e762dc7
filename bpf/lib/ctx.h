/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reading fields of program contexts (bpf_sock_ops, bpf_sock_addr) and of
 * struct bpf_sock in the one shape the verifier accepts: a load at a constant
 * offset from the context or socket pointer itself.
 */
#ifndef WEFT_BPF_LIB_CTX_H
#define WEFT_BPF_LIB_CTX_H

/* clang computes "base = ctx + offsetof(user_ip6)" once and indexes from it,
 * or merges two branches reading local_ip4 and local_ip6[0] into one load
 * through a computed pointer; the verifier refuses any arithmetic on a context
 * or socket pointer ("dereference of modified ctx ptr"). volatile and
 * barrier() do not stop that, an asm load with an immediate offset does.
 * These structs are uapi with fixed layouts, so no CO-RE relocation is lost.
 */
#define MESH_OFFSET(ptr, field) __builtin_offsetof(__typeof__(*(ptr)), field)

#define MESH_LOAD_U32(ptr, field)                                                                  \
	({                                                                                         \
		__u32 __v;                                                                         \
		asm volatile("%[v] = *(u32 *)(%[p] + %[off])"                                      \
			     : [v] "=r"(__v)                                                       \
			     : [p] "r"(ptr), [off] "i"(MESH_OFFSET(ptr, field)));                  \
		__v;                                                                               \
	})

#define MESH_LOAD_U16(ptr, field)                                                                  \
	({                                                                                         \
		__u16 __v;                                                                         \
		asm volatile("%[v] = *(u16 *)(%[p] + %[off])"                                      \
			     : [v] "=r"(__v)                                                       \
			     : [p] "r"(ptr), [off] "i"(MESH_OFFSET(ptr, field)));                  \
		__v;                                                                               \
	})

/* Copy the __u32[4] field @arr (an IPv6 address, network order) into @dst. */
#define MESH_LOAD_IP6(dst, ptr, arr)                                                               \
	do {                                                                                       \
		(dst)->addr[0] = MESH_LOAD_U32(ptr, arr[0]);                                       \
		(dst)->addr[1] = MESH_LOAD_U32(ptr, arr[1]);                                       \
		(dst)->addr[2] = MESH_LOAD_U32(ptr, arr[2]);                                       \
		(dst)->addr[3] = MESH_LOAD_U32(ptr, arr[3]);                                       \
	} while (0)

#endif /* WEFT_BPF_LIB_CTX_H */
