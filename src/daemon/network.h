/*
 * coved's networks: "default", a NAT network like libvirt's (a bridge with
 * 192.168.124.1/24, dnsmasq for DHCP, an nftables masquerade table), created when a VM
 * first uses it; each NIC of a VM on it gets a tap device enslaved to the bridge.
 */
#ifndef COVE_DAEMON_NETWORK_H
#define COVE_DAEMON_NETWORK_H

#include <cove/error.h>

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#define NET_DEFAULT_BRIDGE "covebr0"
#define NET_DEFAULT_SUBNET "192.168.124.0/24"

/* Brings the named network up (idempotent). Only "default" exists. */
int net_ensure(const char *state_dir, const char *name, struct cove_err *err);
/* Whether the network's bridge exists and is up. */
bool net_active(const char *name);
/* Describes the network (a new reference); NULL for an unknown name. */
json_object *net_describe(const char *state_dir, const char *name);
/* The tap device name of a VM's NIC n: stable, at most 15 characters. */
void net_tap_name(const char *vm, unsigned n, char out[16]);
/* Creates the tap for a VM's NIC n and enslaves it to the network's bridge; owner
 * (not (uid_t)-1) may attach to it without privileges (a confined VMM's user). */
int net_tap_create(const char *network, const char *tap, uid_t owner, struct cove_err *err);
/* Gives an existing tap (named in a definition) to owner. */
int net_tap_own(const char *tap, uid_t owner, struct cove_err *err);
/* Removes whatever taps net_tap_create made for vm (on its exit). */
void net_taps_remove(const char *vm);
/* Stops dnsmasq and removes the bridge and nftables table. */
void net_teardown(const char *state_dir, const char *name);
/* Whether any device (a VM's tap) is on the network's bridge. */
bool net_in_use(const char *name);
/* Tears the network down when it is up and nothing is on its bridge: coved calls this
 * when it stops, so a network outlives coved only while VMs use it. */
void net_release_unused(const char *state_dir, const char *name);

#endif
