/* Embeds the probe guest's PVH ELF (built next to this object) as cove_probe_pvh[]. */
	.section .rodata
	.balign 16
	.globl cove_probe_pvh
	.type cove_probe_pvh, @object
cove_probe_pvh:
	.incbin "probe-pvh.elf"
cove_probe_pvh_end:
	.size cove_probe_pvh, cove_probe_pvh_end - cove_probe_pvh

	.balign 8
	.globl cove_probe_pvh_size
	.type cove_probe_pvh_size, @object
cove_probe_pvh_size:
	.quad cove_probe_pvh_end - cove_probe_pvh
	.size cove_probe_pvh_size, 8

	.section .note.GNU-stack, "", @progbits
