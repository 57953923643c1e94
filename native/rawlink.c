/*
 * splitnve raw Ethernet link: an AF_PACKET socket bound to one interface, for ECP (0x8940) and
 * LLDP (0x88CC) frames only.
 *
 * - A classic BPF filter in the kernel passes ECP and LLDP (also behind one 802.1Q/802.1ad tag)
 *   and drops our own outgoing frames; PACKET_IGNORE_OUTGOING keeps them from being cloned at all.
 * - On receive the kernel strips a VLAN tag into the packet's metadata; we ask for it with
 *   PACKET_AUXDATA and put the tag back into the frame, so JS sees the frame as it was on the wire.
 * - The socket and an rtnetlink socket (RTMGRP_LINK, for up/down and removal) are polled on the
 *   libuv loop with uv_poll; frames are read with recvmmsg and written with sendmmsg, both
 *   non-blocking. When the send buffer is full, send() says how many frames it took and the poll
 *   handle waits for POLLOUT, then calls the writable callback.
 * - Optional netns: the sockets are created inside a network namespace (setns around socket()),
 *   and stay there for their lifetime; the calling thread goes back to its own namespace.
 *
 * JS API (wrapped by src/link/raw.ts):
 *   new RawSocket({ifname, netns?, allowDown?, groups: Buffer[], rcvbuf, sndbuf},
 *                 onFrames(Buffer[]), onStatus(up, reason), onWritable(), onClosed())
 *   send(frames, start) -> index of the first frame not taken (frames.length when all were)
 *   join(mac6) / leave(mac6) / status() -> [up, reason] / mac() -> Buffer / ifindex()
 *   stats() -> {rxFrames, txFrames, rxDropped, txErrors} / close()
 *   setPaused(bool) -> stops / resumes reading (frames queue in the kernel, which drops the
 *     excess); sending goes on.
 *   setSources(mode, macs[]) -> re-attaches the filter with a source MAC rule: mode 0 none,
 *     1 only frames from these sources, 2 every source but these (at most MAX_SOURCES).
 *     Two sockets on one interface, one including and one excluding the same sources, put
 *     those sources' frames in a queue of their own (a flood from others cannot fill it).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef TP_STATUS_VLAN_VALID
#define TP_STATUS_VLAN_VALID (1 << 4)
#endif
#ifndef TP_STATUS_VLAN_TPID_VALID
#define TP_STATUS_VLAN_TPID_VALID (1 << 6)
#endif

#define BATCH 64          /* frames per recvmmsg/sendmmsg call */
#define SLOT 16384        /* receive buffer per frame; longer frames are counted as dropped */
#define RX_ROUNDS 4       /* recvmmsg calls per poll wake-up before yielding to the loop */
#define MAX_GROUPS 64     /* multicast memberships per link */
#define MAX_SOURCES 512   /* source MACs in a filter (5 BPF instructions each, 4096 max) */
#define AUX_SPACE CMSG_SPACE(sizeof(struct tpacket_auxdata))

typedef struct link_s {
  napi_env env;
  napi_ref on_frames, on_status, on_writable, on_closed;
  napi_async_context actx;
  int fd, nl_fd;
  int ifindex; /* -1 while the interface is gone */
  char ifname[IF_NAMESIZE];
  unsigned char mac[6];
  int up;
  const char *reason;
  uv_poll_t pkt_poll, nl_poll;
  int pkt_poll_on, nl_poll_on, want_writable;
  int rx_paused; /* setPaused(true): not reading; the kernel queue fills and drops */
  int closing, pending_closes, finalized, env_gone, js_released, hook_added;
  double rx_frames, tx_frames, rx_dropped, tx_errors;
  unsigned char groups[MAX_GROUPS][6];
  int ngroups;
  unsigned char *rxbuf; /* BATCH * SLOT */
  struct mmsghdr rx_msgs[BATCH];
  struct iovec rx_iov[BATCH];
  struct sockaddr_ll rx_addr[BATCH];
  union {
    char buf[AUX_SPACE];
    struct cmsghdr align;
  } rx_ctrl[BATCH];
  struct mmsghdr tx_msgs[BATCH];
  struct iovec tx_iov[BATCH];
  char nlbuf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
} link_t;

/* ---------- small helpers ---------- */

#define NAPI_OK(call)                                                                              \
  do {                                                                                             \
    if ((call) != napi_ok) return NULL;                                                            \
  } while (0)

static void throw_code(napi_env env, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void throw_code(napi_env env, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_error(env, code, msg);
}

static const char *errno_code(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case ENOENT: return "ENOENT";
    case ENETDOWN: return "ENETDOWN";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EADDRINUSE: return "EADDRINUSE";
    default: return "EIO";
  }
}

static void flags_to_status(int flags, int *up, const char **reason) {
  if (!(flags & IFF_UP)) {
    *up = 0;
    *reason = "administratively down";
  } else if (!(flags & IFF_RUNNING)) {
    *up = 0;
    *reason = "no carrier";
  } else {
    *up = 1;
    *reason = NULL;
  }
}

/*
 * The kernel filter: ECP or LLDP, untagged or behind one tag, never our own outgoing frames;
 * optionally only from (mode 1) or never from (mode 2) a list of source MACs.
 */
static int attach_filter_src(int fd, int mode, const unsigned char (*macs)[6], int n) {
  if (mode == 0) n = 0;
  size_t cap = 3 + (size_t)n * 5 + 1 + 10;
  struct sock_filter *code = calloc(cap, sizeof *code);
  if (!code) {
    errno = ENOMEM;
    return -1;
  }
  size_t k = 0;
#define EMIT(ins) (code[k++] = (struct sock_filter)ins)
  EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE)));
  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 1));
  EMIT(BPF_STMT(BPF_RET | BPF_K, 0));
  /* Source rules; "ja" placeholders (include) are patched once the ethertype part's place is known. */
  size_t ja[MAX_SOURCES];
  for (int i = 0; i < n; i++) {
    const unsigned char *m = macs[i];
    uint32_t hi = ((uint32_t)m[0] << 24) | ((uint32_t)m[1] << 16) | ((uint32_t)m[2] << 8) | m[3];
    uint32_t lo = ((uint32_t)m[4] << 8) | m[5];
    EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 6));
    EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hi, 0, 3));
    EMIT(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 10));
    EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, lo, 0, 1));
    if (mode == 1) {
      ja[i] = k;
      EMIT(BPF_STMT(BPF_JMP | BPF_JA, 0));
    } else {
      EMIT(BPF_STMT(BPF_RET | BPF_K, 0));
    }
  }
  if (mode == 1) EMIT(BPF_STMT(BPF_RET | BPF_K, 0)); /* no listed source: drop */
  size_t ether = k;
  for (int i = 0; mode == 1 && i < n; i++) code[ja[i]].k = (uint32_t)(ether - ja[i] - 1);
  EMIT(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12));
  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8940, 7, 0)); /* -> accept */
  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x88cc, 6, 0)); /* -> accept */
  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8100, 1, 0)); /* -> tagged */
  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x88a8, 0, 3)); /* -> tagged, else drop */
  EMIT(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 16));
  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x8940, 2, 0)); /* -> accept */
  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x88cc, 1, 0)); /* -> accept, else drop */
  EMIT(BPF_STMT(BPF_RET | BPF_K, 0));
  EMIT(BPF_STMT(BPF_RET | BPF_K, 0x40000));
#undef EMIT
  struct sock_fprog prog = {.len = (unsigned short)k, .filter = code};
  int r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
  int e = errno;
  free(code);
  errno = e;
  return r;
}

static int attach_filter(int fd) {
  return attach_filter_src(fd, 0, NULL, 0);
}

static int membership(link_t *l, const unsigned char *mac, int add) {
  struct packet_mreq mr;
  memset(&mr, 0, sizeof mr);
  mr.mr_ifindex = l->ifindex;
  mr.mr_type = PACKET_MR_MULTICAST;
  mr.mr_alen = 6;
  memcpy(mr.mr_address, mac, 6);
  return setsockopt(l->fd, SOL_PACKET, add ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP, &mr,
                    sizeof mr);
}

/* Binds the packet socket to ifindex and joins every group. Returns 0 or an errno. */
static int bind_and_join(link_t *l, int ifindex) {
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(l->fd, (struct sockaddr *)&sll, sizeof sll) < 0) return errno;
  l->ifindex = ifindex;
  for (int i = 0; i < l->ngroups; i++)
    if (membership(l, l->groups[i], 1) < 0) return errno;
  return 0;
}

static int ifreq_ioctl(int fd, const char *ifname, unsigned long req, struct ifreq *ifr) {
  memset(ifr, 0, sizeof *ifr);
  memcpy(ifr->ifr_name, ifname, strnlen(ifname, IF_NAMESIZE - 1));
  return ioctl(fd, req, ifr);
}

/* ---------- calling into JS from libuv callbacks ---------- */

static void call_js(link_t *l, napi_ref ref, size_t argc, napi_value *argv) {
  napi_env env = l->env;
  napi_value fn, recv, result;
  if (ref == NULL || napi_get_reference_value(env, ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv); /* napi_make_callback needs an object as receiver */
  napi_status st = napi_make_callback(env, l->actx, recv, fn, argc, argv, &result);
  if (st == napi_pending_exception) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
}

static void set_status(link_t *l, int up, const char *reason) {
  if (l->up == up && (up || l->reason == reason)) return;
  l->up = up;
  l->reason = up ? NULL : reason;
  if (l->closing || l->env_gone) return;
  napi_env env = l->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[2];
  napi_get_boolean(env, up, &argv[0]);
  if (l->reason)
    napi_create_string_utf8(env, l->reason, NAPI_AUTO_LENGTH, &argv[1]);
  else
    napi_get_undefined(env, &argv[1]);
  call_js(l, l->on_status, 2, argv);
  napi_close_handle_scope(env, scope);
}

/* Re-reads the interface state with an ioctl (after a netlink overrun or socket error). */
static void resync_status(link_t *l) {
  struct ifreq ifr;
  if (ifreq_ioctl(l->fd, l->ifname, SIOCGIFINDEX, &ifr) < 0) {
    if (errno == ENODEV) {
      l->ifindex = -1;
      set_status(l, 0, "interface removed");
    }
    return;
  }
  if (l->ifindex != ifr.ifr_ifindex) {
    int idx = ifr.ifr_ifindex;
    if (bind_and_join(l, idx) != 0) return;
  }
  if (ifreq_ioctl(l->fd, l->ifname, SIOCGIFHWADDR, &ifr) == 0)
    memcpy(l->mac, ifr.ifr_hwaddr.sa_data, 6);
  if (ifreq_ioctl(l->fd, l->ifname, SIOCGIFFLAGS, &ifr) == 0) {
    int up;
    const char *reason;
    flags_to_status(ifr.ifr_flags, &up, &reason);
    set_status(l, up, reason);
  }
}

/* ---------- receive ---------- */

static void rx(link_t *l) {
  napi_env env = l->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value arr = NULL;
  uint32_t n = 0;
  for (int round = 0; round < RX_ROUNDS && !l->closing; round++) {
    for (int i = 0; i < BATCH; i++) {
      l->rx_iov[i].iov_base = l->rxbuf + (size_t)i * SLOT;
      l->rx_iov[i].iov_len = SLOT - 4; /* room to put a stripped VLAN tag back */
      struct msghdr *h = &l->rx_msgs[i].msg_hdr;
      h->msg_name = &l->rx_addr[i];
      h->msg_namelen = sizeof l->rx_addr[i];
      h->msg_iov = &l->rx_iov[i];
      h->msg_iovlen = 1;
      h->msg_control = l->rx_ctrl[i].buf;
      h->msg_controllen = sizeof l->rx_ctrl[i].buf;
      h->msg_flags = 0;
      l->rx_msgs[i].msg_len = 0;
    }
    int r = recvmmsg(l->fd, l->rx_msgs, BATCH, MSG_DONTWAIT, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN, or a socket error (ENETDOWN) that reading has now cleared */
    }
    for (int i = 0; i < r; i++) {
      struct msghdr *h = &l->rx_msgs[i].msg_hdr;
      if (l->rx_addr[i].sll_pkttype == PACKET_OUTGOING) continue;
      if (h->msg_flags & MSG_TRUNC) {
        l->rx_dropped++;
        continue;
      }
      size_t len = l->rx_msgs[i].msg_len;
      unsigned char *frame = l->rxbuf + (size_t)i * SLOT;
      const struct tpacket_auxdata *aux = NULL;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA &&
            c->cmsg_len >= CMSG_LEN(sizeof *aux))
          aux = (const struct tpacket_auxdata *)CMSG_DATA(c);
      }
      size_t extra = 0;
      uint16_t tpid = 0x8100, tci = 0;
      if (aux && len >= 12 && (aux->tp_vlan_tci != 0 || (aux->tp_status & TP_STATUS_VLAN_VALID))) {
        extra = 4;
        tci = aux->tp_vlan_tci;
        if (aux->tp_status & TP_STATUS_VLAN_TPID_VALID) tpid = aux->tp_vlan_tpid;
      }
      void *data;
      napi_value buf;
      if (napi_create_buffer(env, len + extra, &data, &buf) != napi_ok) break;
      unsigned char *out = data;
      if (extra) {
        memcpy(out, frame, 12);
        out[12] = tpid >> 8;
        out[13] = tpid & 0xff;
        out[14] = tci >> 8;
        out[15] = tci & 0xff;
        memcpy(out + 16, frame + 12, len - 12);
      } else {
        memcpy(out, frame, len);
      }
      if (arr == NULL && napi_create_array(env, &arr) != napi_ok) break;
      napi_set_element(env, arr, n++, buf);
      l->rx_frames++;
    }
    if (r < BATCH) break;
  }
  if (n > 0 && !l->closing) call_js(l, l->on_frames, 1, &arr);
  napi_close_handle_scope(env, scope);
}

static void pkt_cb(uv_poll_t *h, int status, int events);

static void pkt_poll_update(link_t *l) {
  if (l->closing) return;
  int ev = (l->rx_paused ? 0 : UV_READABLE) | (l->want_writable ? UV_WRITABLE : 0);
  if (ev == 0) {
    uv_poll_stop(&l->pkt_poll);
    return;
  }
  uv_poll_start(&l->pkt_poll, ev, pkt_cb);
}

static void pkt_cb(uv_poll_t *h, int status, int events) {
  link_t *l = h->data;
  if (l->closing) return;
  if (status < 0) {
    /* libuv stops the handle on POLLERR (ENETDOWN when the interface goes down or away):
       clear the socket error and poll again. */
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    pkt_poll_update(l);
    return;
  }
  if ((events & UV_WRITABLE) && l->want_writable) {
    l->want_writable = 0;
    pkt_poll_update(l);
    napi_handle_scope scope;
    if (napi_open_handle_scope(l->env, &scope) == napi_ok) {
      call_js(l, l->on_writable, 0, NULL);
      napi_close_handle_scope(l->env, scope);
    }
    if (l->closing) return;
  }
  if ((events & UV_READABLE) && !l->rx_paused) rx(l);
}

/* ---------- link state from rtnetlink ---------- */

static void link_msg(link_t *l, struct nlmsghdr *nh) {
  if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) return;
  struct ifinfomsg *ifi = NLMSG_DATA(nh);
  const char *name = NULL;
  const unsigned char *addr = NULL;
  int attrlen = nh->nlmsg_len - NLMSG_LENGTH(sizeof *ifi);
  for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, attrlen); a = RTA_NEXT(a, attrlen)) {
    if (a->rta_type == IFLA_IFNAME && RTA_PAYLOAD(a) > 0)
      name = RTA_DATA(a);
    else if (a->rta_type == IFLA_ADDRESS && RTA_PAYLOAD(a) == 6)
      addr = RTA_DATA(a);
  }
  if (nh->nlmsg_type == RTM_DELLINK) {
    if (ifi->ifi_index == l->ifindex) {
      l->ifindex = -1;
      set_status(l, 0, "interface removed");
    }
    return;
  }
  if (ifi->ifi_index != l->ifindex) {
    /* An interface of our name came (back): bind to it. */
    if (l->ifindex >= 0 || name == NULL || strncmp(name, l->ifname, IF_NAMESIZE) != 0) return;
    if (bind_and_join(l, ifi->ifi_index) != 0) return;
  }
  if (addr) memcpy(l->mac, addr, 6);
  int up;
  const char *reason;
  flags_to_status(ifi->ifi_flags, &up, &reason);
  set_status(l, up, reason);
}

static void nl_cb(uv_poll_t *h, int status, int events) {
  link_t *l = h->data;
  (void)events;
  if (l->closing) return;
  if (status < 0) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(l->nl_fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (!l->closing) uv_poll_start(&l->nl_poll, UV_READABLE, nl_cb);
    resync_status(l);
    return;
  }
  char *buf = l->nlbuf;
  for (int round = 0; round < 64 && !l->closing; round++) {
    ssize_t n = recv(l->nl_fd, buf, sizeof l->nlbuf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) { /* overrun: events were lost */
        resync_status(l);
        continue;
      }
      break;
    }
    int left = (int)n;
    for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, left) && !l->closing;
         nh = NLMSG_NEXT(nh, left)) {
      if (nh->nlmsg_type == RTM_NEWLINK || nh->nlmsg_type == RTM_DELLINK) link_msg(l, nh);
    }
  }
}

/* ---------- lifetime ---------- */

static void release_js(link_t *l) {
  if (l->js_released || l->env_gone) return;
  l->js_released = 1;
  napi_env env = l->env;
  napi_ref *refs[] = {&l->on_frames, &l->on_status, &l->on_writable, &l->on_closed};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i]) napi_delete_reference(env, *refs[i]);
    *refs[i] = NULL;
  }
  if (l->actx) {
    napi_handle_scope scope;
    int have_scope = napi_open_handle_scope(env, &scope) == napi_ok;
    napi_async_destroy(env, l->actx);
    if (have_scope) napi_close_handle_scope(env, scope);
    l->actx = NULL;
  }
}

static void free_link(link_t *l) {
  free(l->rxbuf);
  free(l);
}

static void handle_closed(uv_handle_t *h) {
  link_t *l = h->data;
  if (--l->pending_closes > 0) return;
  if (!l->env_gone) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(l->env, &scope) == napi_ok) {
      call_js(l, l->on_closed, 0, NULL);
      napi_close_handle_scope(l->env, scope);
    }
    release_js(l);
  }
  if (l->finalized || l->env_gone) free_link(l);
}

static void env_cleanup(void *arg);

/* Stops polling and closes both sockets now; the JS references go when libuv has closed the
   handles (onClosed is called then). Safe from inside any callback. */
static void do_close(link_t *l) {
  if (l->closing) return;
  l->closing = 1;
  if (!l->env_gone && l->hook_added) napi_remove_env_cleanup_hook(l->env, env_cleanup, l);
  if (l->pkt_poll_on) {
    uv_close((uv_handle_t *)&l->pkt_poll, handle_closed);
    l->pending_closes++;
  }
  if (l->nl_poll_on) {
    uv_close((uv_handle_t *)&l->nl_poll, handle_closed);
    l->pending_closes++;
  }
  if (l->fd >= 0) close(l->fd);
  if (l->nl_fd >= 0) close(l->nl_fd);
  l->fd = l->nl_fd = -1;
  if (l->pending_closes == 0) release_js(l);
}

static void env_cleanup(void *arg) {
  link_t *l = arg;
  l->env_gone = 1;
  do_close(l);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  link_t *l = data;
  l->finalized = 1;
  if (!l->closing) do_close(l);
  if (l->pending_closes == 0) free_link(l);
}

/* ---------- open ---------- */

static int get_string(napi_env env, napi_value obj, const char *key, char *out, size_t cap,
                      int *present) {
  napi_value v;
  napi_valuetype t;
  *present = 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return -1;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined || t == napi_null) return 0;
  if (t != napi_string) return -1;
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len + 1 > cap) return -1;
  napi_get_value_string_utf8(env, v, out, cap, &len);
  *present = 1;
  return 0;
}

static int get_bool(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return 0;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return 0;
  return b;
}

static int get_int(napi_env env, napi_value obj, const char *key, int dflt) {
  napi_value v;
  int32_t i;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return dflt;
  if (napi_get_value_int32(env, v, &i) != napi_ok) return dflt;
  return i;
}

static int get_mac(napi_env env, napi_value v, unsigned char *mac) {
  bool is_ta;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return -1;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok) return -1;
  if (type != napi_uint8_array || length != 6) return -1;
  memcpy(mac, data, 6);
  return 0;
}

static int add_group(link_t *l, const unsigned char *mac) {
  for (int i = 0; i < l->ngroups; i++)
    if (memcmp(l->groups[i], mac, 6) == 0) return 0;
  if (l->ngroups >= MAX_GROUPS) return ENOSPC;
  if (l->ifindex >= 0 && membership(l, mac, 1) < 0) return errno;
  memcpy(l->groups[l->ngroups++], mac, 6);
  return 0;
}

static void set_buffer(int fd, int force_opt, int opt, int bytes) {
  if (bytes <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) < 0)
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

/* Creates both sockets, in the given namespace when there is one. Throws and returns -1. */
static int make_sockets(napi_env env, link_t *l, const char *netns) {
  int orig = -1, target = -1, ret = -1;
  if (netns[0]) {
    char path[4096];
    if (strchr(netns, '/'))
      snprintf(path, sizeof path, "%s", netns);
    else
      snprintf(path, sizeof path, "/var/run/netns/%s", netns);
    target = open(path, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      int e = errno;
      throw_code(env, errno_code(e), "cannot open network namespace %s: %s", path, strerror(e));
      return -1;
    }
    orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig < 0) {
      int e = errno;
      throw_code(env, errno_code(e), "cannot open our own network namespace: %s", strerror(e));
      close(target);
      return -1;
    }
    if (setns(target, CLONE_NEWNET) < 0) {
      int e = errno;
      throw_code(env, errno_code(e), "cannot enter network namespace %s: %s%s", path, strerror(e),
                 e == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
      close(target);
      close(orig);
      return -1;
    }
  }
  l->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (l->fd < 0) {
    int e = errno;
    if (e == EPERM || e == EACCES)
      throw_code(env, "EPERM", "opening a raw socket on %s needs root or CAP_NET_RAW: %s",
                 l->ifname, strerror(e));
    else
      throw_code(env, errno_code(e), "cannot open a raw socket for %s: %s", l->ifname,
                 strerror(e));
    goto out;
  }
  l->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (l->nl_fd < 0) {
    int e = errno;
    throw_code(env, errno_code(e), "cannot open an rtnetlink socket for %s: %s", l->ifname,
               strerror(e));
    goto out;
  }
  struct sockaddr_nl snl;
  memset(&snl, 0, sizeof snl);
  snl.nl_family = AF_NETLINK;
  snl.nl_groups = RTMGRP_LINK;
  if (bind(l->nl_fd, (struct sockaddr *)&snl, sizeof snl) < 0) {
    int e = errno;
    throw_code(env, errno_code(e), "cannot subscribe to link events for %s: %s", l->ifname,
               strerror(e));
    goto out;
  }
  ret = 0;
out:
  if (orig >= 0) {
    if (setns(orig, CLONE_NEWNET) < 0)
      napi_fatal_error("splitnve rawlink", NAPI_AUTO_LENGTH,
                       "cannot return to the original network namespace", NAPI_AUTO_LENGTH);
    close(orig);
  }
  if (target >= 0) close(target);
  return ret;
}

/* Everything after the sockets exist: lookup, options, bind, groups. Throws and returns -1. */
static int setup_socket(napi_env env, link_t *l, const char *netns, int allow_down, int rcvbuf,
                        int sndbuf) {
  struct ifreq ifr;
  const char *where = netns[0] ? " in network namespace " : "";
  if (ifreq_ioctl(l->fd, l->ifname, SIOCGIFINDEX, &ifr) < 0) {
    int e = errno;
    if (e == ENODEV)
      throw_code(env, "ENODEV", "no such interface: %s%s%s", l->ifname, where, netns);
    else
      throw_code(env, errno_code(e), "cannot look up interface %s: %s", l->ifname, strerror(e));
    return -1;
  }
  int ifindex = ifr.ifr_ifindex;
  if (ifreq_ioctl(l->fd, l->ifname, SIOCGIFHWADDR, &ifr) < 0) {
    int e = errno;
    throw_code(env, errno_code(e), "cannot read the MAC address of %s: %s", l->ifname,
               strerror(e));
    return -1;
  }
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
    throw_code(env, "EINVAL", "interface %s is not an Ethernet interface (hardware type %d)",
               l->ifname, ifr.ifr_hwaddr.sa_family);
    return -1;
  }
  memcpy(l->mac, ifr.ifr_hwaddr.sa_data, 6);
  if (ifreq_ioctl(l->fd, l->ifname, SIOCGIFFLAGS, &ifr) < 0) {
    int e = errno;
    throw_code(env, errno_code(e), "cannot read the flags of %s: %s", l->ifname, strerror(e));
    return -1;
  }
  flags_to_status(ifr.ifr_flags, &l->up, &l->reason);
  if (!l->up && !allow_down) {
    throw_code(env, "ENETDOWN", "interface %s is down (%s); open it with allowDown to wait for it",
               l->ifname, l->reason);
    return -1;
  }
  if (attach_filter(l->fd) < 0) {
    int e = errno;
    throw_code(env, errno_code(e), "cannot attach the frame filter to %s: %s", l->ifname,
               strerror(e));
    return -1;
  }
  int one = 1;
  setsockopt(l->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one); /* kernel >= 4.20 */
  if (setsockopt(l->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0) {
    int e = errno;
    throw_code(env, errno_code(e), "cannot enable PACKET_AUXDATA on %s: %s", l->ifname,
               strerror(e));
    return -1;
  }
  set_buffer(l->fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf);
  set_buffer(l->fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf);
  int e = bind_and_join(l, ifindex);
  if (e != 0) {
    throw_code(env, errno_code(e), "cannot bind to %s or join its groups: %s", l->ifname,
               strerror(e));
    return -1;
  }
  return 0;
}

static napi_value js_new(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "RawSocket(options, onFrames, onStatus, onWritable, onClosed)");
    return NULL;
  }
  for (int i = 1; i < 5; i++) {
    napi_valuetype t;
    NAPI_OK(napi_typeof(env, argv[i], &t));
    if (t != napi_function) {
      napi_throw_type_error(env, NULL, "RawSocket: callbacks must be functions");
      return NULL;
    }
  }
  link_t *l = calloc(1, sizeof *l);
  if (!l) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  l->env = env;
  l->fd = l->nl_fd = -1;
  l->ifindex = -1;
  char netns[4096] = "";
  int present;
  if (get_string(env, argv[0], "ifname", l->ifname, sizeof l->ifname, &present) < 0 || !present ||
      !l->ifname[0]) {
    free(l);
    napi_throw_type_error(env, "EINVAL", "ifname must be an interface name of 1 to 15 characters");
    return NULL;
  }
  if (get_string(env, argv[0], "netns", netns, sizeof netns, &present) < 0) {
    free(l);
    napi_throw_type_error(env, "EINVAL", "netns must be a string");
    return NULL;
  }
  int allow_down = get_bool(env, argv[0], "allowDown");
  int rcvbuf = get_int(env, argv[0], "rcvbuf", 8 << 20);
  int sndbuf = get_int(env, argv[0], "sndbuf", 4 << 20);
  napi_value groups;
  uint32_t ngroups = 0;
  bool is_array = false;
  if (napi_get_named_property(env, argv[0], "groups", &groups) == napi_ok &&
      napi_is_array(env, groups, &is_array) == napi_ok && is_array)
    napi_get_array_length(env, groups, &ngroups);
  for (uint32_t i = 0; i < ngroups; i++) {
    napi_value g;
    unsigned char mac[6];
    if (napi_get_element(env, groups, i, &g) != napi_ok || get_mac(env, g, mac) < 0) {
      free(l);
      napi_throw_type_error(env, "EINVAL", "groups must be 6-octet Uint8Arrays");
      return NULL;
    }
    if (add_group(l, mac) != 0) {
      free(l);
      napi_throw_range_error(env, "EINVAL", "too many multicast groups");
      return NULL;
    }
  }
  l->rxbuf = malloc((size_t)BATCH * SLOT);
  if (!l->rxbuf) {
    free(l);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (make_sockets(env, l, netns) < 0 ||
      setup_socket(env, l, netns, allow_down, rcvbuf, sndbuf) < 0) {
    if (l->fd >= 0) close(l->fd);
    if (l->nl_fd >= 0) close(l->nl_fd);
    free_link(l);
    return NULL;
  }
  uv_loop_t *loop;
  napi_value resource_name;
  int ok = napi_get_uv_event_loop(env, &loop) == napi_ok &&
           napi_create_string_utf8(env, "splitnve:rawlink", NAPI_AUTO_LENGTH, &resource_name) ==
               napi_ok &&
           napi_async_init(env, NULL, resource_name, &l->actx) == napi_ok &&
           napi_create_reference(env, argv[1], 1, &l->on_frames) == napi_ok &&
           napi_create_reference(env, argv[2], 1, &l->on_status) == napi_ok &&
           napi_create_reference(env, argv[3], 1, &l->on_writable) == napi_ok &&
           napi_create_reference(env, argv[4], 1, &l->on_closed) == napi_ok;
  if (ok && uv_poll_init(loop, &l->pkt_poll, l->fd) == 0) {
    l->pkt_poll_on = 1;
    l->pkt_poll.data = l;
  } else {
    ok = 0;
  }
  if (ok && uv_poll_init(loop, &l->nl_poll, l->nl_fd) == 0) {
    l->nl_poll_on = 1;
    l->nl_poll.data = l;
  } else {
    ok = 0;
  }
  if (ok && napi_wrap(env, self, l, finalize, NULL, NULL) != napi_ok) ok = 0;
  if (!ok) {
    release_js(l);
    l->finalized = 1; /* nothing in JS holds it: freed once the handles are closed */
    do_close(l);
    if (l->pending_closes == 0) free_link(l);
    napi_throw_error(env, "EIO", "cannot set up the raw link");
    return NULL;
  }
  uv_poll_start(&l->pkt_poll, UV_READABLE, pkt_cb);
  uv_poll_start(&l->nl_poll, UV_READABLE, nl_cb);
  if (napi_add_env_cleanup_hook(env, env_cleanup, l) == napi_ok) l->hook_added = 1;
  /* No link event is lost between reading the flags and polling: the netlink socket was
     subscribed before the flags were read. */
  return self;
}

/* ---------- methods ---------- */

static link_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  link_t *l = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, (void **)&l) != napi_ok || l == NULL) {
    napi_throw_type_error(env, NULL, "not a RawSocket");
    return NULL;
  }
  if (l->closing) {
    napi_throw_error(env, "ERR_CLOSED", "the raw link is closed");
    return NULL;
  }
  return l;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  link_t *l = unwrap(env, info, &argc, argv);
  if (!l) return NULL;
  uint32_t len = 0, i = 0;
  bool is_array = false;
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "send(frames: Uint8Array[], start)");
    return NULL;
  }
  NAPI_OK(napi_get_array_length(env, argv[0], &len));
  if (argc > 1) napi_get_value_uint32(env, argv[1], &i);
  while (i < len && !l->want_writable) {
    uint32_t idx[BATCH];
    int k = 0;
    uint32_t j = i;
    for (; k < BATCH && j < len; j++) {
      napi_value f;
      bool is_ta = false;
      napi_typedarray_type type;
      size_t length = 0;
      void *data = NULL;
      if (napi_get_element(env, argv[0], j, &f) != napi_ok ||
          napi_is_typedarray(env, f, &is_ta) != napi_ok || !is_ta ||
          napi_get_typedarray_info(env, f, &type, &length, &data, NULL, NULL) != napi_ok ||
          type != napi_uint8_array) {
        l->tx_errors++;
        continue;
      }
      l->tx_iov[k].iov_base = data;
      l->tx_iov[k].iov_len = length;
      memset(&l->tx_msgs[k], 0, sizeof l->tx_msgs[k]);
      l->tx_msgs[k].msg_hdr.msg_iov = &l->tx_iov[k];
      l->tx_msgs[k].msg_hdr.msg_iovlen = 1;
      idx[k++] = j;
    }
    if (k == 0) {
      i = j;
      continue;
    }
    int r = sendmmsg(l->fd, l->tx_msgs, k, MSG_DONTWAIT);
    if (r > 0) {
      l->tx_frames += r;
      i = r == k ? j : idx[r];
      continue;
    }
    int e = r < 0 ? errno : EAGAIN;
    i = idx[0];
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      l->want_writable = 1;
      pkt_poll_update(l);
      break;
    }
    l->tx_errors++; /* this frame is bad (too short, too long) or the interface is down */
    i++;
  }
  napi_value out;
  NAPI_OK(napi_create_uint32(env, i, &out));
  return out;
}

static napi_value js_join_leave(napi_env env, napi_callback_info info, int add) {
  size_t argc = 1;
  napi_value argv[1];
  link_t *l = unwrap(env, info, &argc, argv);
  if (!l) return NULL;
  unsigned char mac[6];
  if (argc < 1 || get_mac(env, argv[0], mac) < 0) {
    napi_throw_type_error(env, "EINVAL", "a group address is a 6-octet Uint8Array");
    return NULL;
  }
  if (add) {
    int e = add_group(l, mac);
    if (e != 0) {
      throw_code(env, errno_code(e), "cannot join group address on %s: %s", l->ifname,
                 e == ENOSPC ? "too many groups" : strerror(e));
      return NULL;
    }
  } else {
    for (int i = 0; i < l->ngroups; i++) {
      if (memcmp(l->groups[i], mac, 6) != 0) continue;
      if (l->ifindex >= 0) membership(l, mac, 0);
      memmove(l->groups[i], l->groups[i + 1], (size_t)(l->ngroups - i - 1) * 6);
      l->ngroups--;
      break;
    }
  }
  return NULL;
}

static napi_value js_join(napi_env env, napi_callback_info info) {
  return js_join_leave(env, info, 1);
}
static napi_value js_leave(napi_env env, napi_callback_info info) {
  return js_join_leave(env, info, 0);
}

static napi_value js_set_paused(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  link_t *l = unwrap(env, info, &argc, argv);
  if (!l) return NULL;
  bool paused = false;
  if (argc < 1 || napi_get_value_bool(env, argv[0], &paused) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "setPaused(boolean)");
    return NULL;
  }
  if (l->rx_paused != (int)paused) {
    l->rx_paused = paused;
    pkt_poll_update(l);
  }
  return NULL;
}

static napi_value js_set_sources(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  link_t *l = unwrap(env, info, &argc, argv);
  if (!l) return NULL;
  int32_t mode = -1;
  uint32_t n = 0;
  bool is_array = false;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &mode) != napi_ok || mode < 0 || mode > 2 ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &n) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "setSources(mode 0|1|2, macs: Uint8Array[])");
    return NULL;
  }
  if (n > MAX_SOURCES) {
    throw_code(env, "EINVAL", "at most %d source addresses in a filter, got %u", MAX_SOURCES, n);
    return NULL;
  }
  unsigned char(*macs)[6] = calloc(n ? n : 1, 6);
  if (!macs) {
    throw_code(env, "ENOMEM", "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok || get_mac(env, v, macs[i]) < 0) {
      free(macs);
      napi_throw_type_error(env, "EINVAL", "a source address is a 6-octet Uint8Array");
      return NULL;
    }
  }
  int r = attach_filter_src(l->fd, mode, (const unsigned char(*)[6])macs, (int)n);
  int e = errno;
  free(macs);
  if (r < 0) {
    throw_code(env, errno_code(e), "cannot attach the source filter to %s: %s", l->ifname,
               strerror(e));
    return NULL;
  }
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (!l) return NULL;
  struct tpacket_stats st;
  socklen_t len = sizeof st;
  if (getsockopt(l->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
    l->rx_dropped += st.tp_drops; /* the kernel resets its counters on every read */
  napi_value out, v;
  NAPI_OK(napi_create_object(env, &out));
  const char *names[] = {"rxFrames", "txFrames", "rxDropped", "txErrors"};
  double vals[] = {l->rx_frames, l->tx_frames, l->rx_dropped, l->tx_errors};
  for (int i = 0; i < 4; i++) {
    NAPI_OK(napi_create_double(env, vals[i], &v));
    NAPI_OK(napi_set_named_property(env, out, names[i], v));
  }
  return out;
}

static napi_value js_status(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (!l) return NULL;
  napi_value out, up, reason;
  NAPI_OK(napi_create_array_with_length(env, 2, &out));
  NAPI_OK(napi_get_boolean(env, l->up, &up));
  if (l->reason)
    NAPI_OK(napi_create_string_utf8(env, l->reason, NAPI_AUTO_LENGTH, &reason));
  else
    NAPI_OK(napi_get_undefined(env, &reason));
  napi_set_element(env, out, 0, up);
  napi_set_element(env, out, 1, reason);
  return out;
}

static napi_value js_mac(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (!l) return NULL;
  napi_value out;
  NAPI_OK(napi_create_buffer_copy(env, 6, l->mac, NULL, &out));
  return out;
}

static napi_value js_ifindex(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t *l = unwrap(env, info, &argc, NULL);
  if (!l) return NULL;
  napi_value out;
  NAPI_OK(napi_create_int32(env, l->ifindex, &out));
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value self;
  link_t *l = NULL;
  NAPI_OK(napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  if (napi_unwrap(env, self, (void **)&l) != napi_ok || l == NULL) return NULL;
  do_close(l);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"join", NULL, js_join, NULL, NULL, NULL, napi_default, NULL},
      {"leave", NULL, js_leave, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"status", NULL, js_status, NULL, NULL, NULL, napi_default, NULL},
      {"mac", NULL, js_mac, NULL, NULL, NULL, napi_default, NULL},
      {"ifindex", NULL, js_ifindex, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"setSources", NULL, js_set_sources, NULL, NULL, NULL, napi_default, NULL},
      {"setPaused", NULL, js_set_paused, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  NAPI_OK(napi_define_class(env, "RawSocket", NAPI_AUTO_LENGTH, js_new, NULL,
                            sizeof methods / sizeof methods[0], methods, &cls));
  NAPI_OK(napi_set_named_property(env, exports, "RawSocket", cls));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
