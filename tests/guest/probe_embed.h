/* The probe guest's PVH ELF, built into Cove: `cove run` without --kernel boots it. */
#ifndef COVE_PROBE_EMBED_H
#define COVE_PROBE_EMBED_H

extern const unsigned char cove_probe_pvh[];
extern const unsigned long cove_probe_pvh_size;

#endif
