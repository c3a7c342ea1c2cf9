/*
 * A tiny PVH guest for Cove's tests. It checks hvm_start_info, prints
 * "pvh: cmdline=<cmdline>" and "pvh: initrd=<first 8 bytes>|none" and "pvh: mem=<e820 RAM MiB>",
 * then acts on the first character of its command line:
 *   p poweroff (ACPI S5)   r reset (ACPI reset register)   k reset (i8042)
 *   t triple fault         h halt forever (for signals)     e emulation failure on PVM (x87)
 *   s spin with interrupts off (for signals)   anything else: poweroff
 */
	.section .note.pvh, "a"
	.p2align 2
	.long 4, 4, 18
	.asciz "Xen"
	.long _start

	.text
	.code32
	.globl _start
_start:
	mov $0x80000, %esp		/* PVH gives no stack */
	mov %ebx, %ebp			/* hvm_start_info */
	cmpl $0x336ec578, 0(%ebp)
	jne bad_magic
	lea s_cmdline, %esi
	call puts
	mov 16+8(%ebp), %esi		/* cmdline_paddr */
	call puts
	call newline

	lea s_initrd, %esi
	call puts
	cmpl $0, 12(%ebp)		/* nr_modules */
	je 1f
	mov 16(%ebp), %eax		/* modlist_paddr */
	mov 0(%eax), %esi		/* modules[0].paddr */
	mov $8, %ecx
2:	lodsb
	call putc
	loop 2b
	jmp 3f
1:	lea s_none, %esi
	call puts
3:	call newline

	/* Sum the RAM entries of the memory map, in MiB. */
	lea s_mem, %esi
	call puts
	mov 40(%ebp), %esi		/* memmap_paddr */
	mov 48(%ebp), %ecx		/* memmap_entries */
	xor %edi, %edi			/* MiB total */
4:	test %ecx, %ecx
	jz 5f
	cmpl $1, 16(%esi)
	jne 6f
	mov 8(%esi), %eax		/* size, low 32 bits */
	mov 12(%esi), %edx		/* size, high 32 bits */
	shrd $20, %edx, %eax
	add %eax, %edi
6:	add $24, %esi
	dec %ecx
	jmp 4b
5:	mov %edi, %eax
	call putdec
	call newline

	mov 16+8(%ebp), %esi
	movb (%esi), %al
	cmp $'r', %al
	je do_reset
	cmp $'k', %al
	je do_kbd_reset
	cmp $'t', %al
	je do_triple
	cmp $'h', %al
	je do_halt
	cmp $'s', %al
	je do_spin
	cmp $'e', %al
	je do_emufail
	jmp poweroff

bad_magic:
	lea s_badmagic, %esi
	call puts
poweroff:
	mov $0x604, %dx
	mov $0x3400, %ax		/* SLP_TYP 5 | SLP_EN */
	out %ax, %dx
	cli
	hlt
	jmp poweroff
do_reset:
	mov $0xcf9, %dx
	mov $0x06, %al
	out %al, %dx
	jmp do_halt
do_kbd_reset:
	mov $0x64, %dx
	mov $0xfe, %al
	out %al, %dx
	jmp do_halt
do_triple:
	lidt zero_idt
	ud2
do_halt:
	cli
	hlt
	jmp do_halt
do_spin:
	jmp do_spin
do_emufail:
	fld1				/* x87: not in PVM's emulator */
	jmp poweroff

/* putc: AL to COM1. */
putc:
	push %edx
	mov $0x3f8, %dx
	out %al, %dx
	pop %edx
	ret
/* puts: the NUL-terminated string at ESI. */
puts:
	push %eax
1:	lodsb
	test %al, %al
	jz 2f
	call putc
	jmp 1b
2:	pop %eax
	ret
newline:
	mov $'\n', %al
	jmp putc
/* putdec: EAX in decimal. */
putdec:
	push %ebx
	push %ecx
	push %edx
	mov $10, %ebx
	xor %ecx, %ecx
1:	xor %edx, %edx
	div %ebx
	push %edx
	inc %ecx
	test %eax, %eax
	jnz 1b
2:	pop %eax
	add $'0', %al
	call putc
	loop 2b
	pop %edx
	pop %ecx
	pop %ebx
	ret

	.p2align 3
zero_idt:
	.word 0
	.long 0
s_cmdline:	.asciz "pvh: cmdline="
s_initrd:	.asciz "pvh: initrd="
s_none:		.asciz "none"
s_mem:		.asciz "pvh: mem="
s_badmagic:	.asciz "pvh: bad hvm_start_info magic\n"
