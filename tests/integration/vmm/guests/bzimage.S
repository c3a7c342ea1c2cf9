/*
 * A tiny bzImage for Cove's tests: a boot-protocol 2.15 setup header and a 64-bit entry
 * (load address + 0x200) that prints "bz: cmdline=...", "bz: initrd=<first 8 bytes>|none",
 * "bz: mem=<e820 RAM MiB>", "bz: rsdp=yes|no" from boot_params and powers off (ACPI S5).
 * Assembled as one flat file: 1 KiB of setup, then the protected-mode part.
 */
	.code64
	.text
	.globl _start
_start:
	.org 0x1f1
	.byte 1				/* setup_sects: setup is 2 sectors */
	.org 0x1fe
	.word 0xaa55
	.byte 0xeb, hdr_end - 0x202	/* jump over the header */
	.ascii "HdrS"
	.word 0x020f			/* boot protocol 2.15 */
	.org 0x211
	.byte 0x01			/* loadflags: LOADED_HIGH */
	.org 0x22c
	.long 0x7fffffff		/* initrd_addr_max */
	.long 0x200000			/* kernel_alignment */
	.byte 1				/* relocatable_kernel */
	.org 0x236
	.word 0x0001			/* xloadflags: XLF_KERNEL_64 */
	.long 2047			/* cmdline_size */
	.org 0x258
	.quad 0x100000			/* pref_address */
	.long 0x100000			/* init_size */
hdr_end:
	.org 0x400
kernel:
	.org 0x600			/* kernel + 0x200: the 64-bit entry */
startup_64:
	mov %rsi, %rbp			/* boot_params */
	lea s_cmdline(%rip), %rsi
	call puts
	mov 0x228(%rbp), %esi		/* cmd_line_ptr */
	call puts
	call newline

	lea s_initrd(%rip), %rsi
	call puts
	cmpl $0, 0x21c(%rbp)		/* ramdisk_size */
	je 1f
	mov 0x218(%rbp), %esi		/* ramdisk_image */
	mov $8, %ecx
2:	lodsb
	call putc
	loop 2b
	jmp 3f
1:	lea s_none(%rip), %rsi
	call puts
3:	call newline

	lea s_mem(%rip), %rsi
	call puts
	movzbl 0x1e8(%rbp), %ecx	/* e820_entries */
	lea 0x2d0(%rbp), %rsi		/* e820_table */
	xor %edi, %edi
4:	test %ecx, %ecx
	jz 5f
	cmpl $1, 16(%rsi)
	jne 6f
	mov 8(%rsi), %rax
	shr $20, %rax
	add %rax, %rdi
6:	add $20, %rsi
	dec %ecx
	jmp 4b
5:	mov %rdi, %rax
	call putdec
	call newline

	lea s_rsdp(%rip), %rsi
	call puts
	lea s_yes(%rip), %rsi
	cmpq $0, 0x70(%rbp)		/* acpi_rsdp_addr */
	jne 7f
	lea s_no(%rip), %rsi
7:	call puts
	call newline

poweroff:
	mov $0x604, %dx
	mov $0x3400, %ax
	out %ax, %dx
	cli
	hlt
	jmp poweroff

putc:
	push %rdx
	mov $0x3f8, %dx
	out %al, %dx
	pop %rdx
	ret
puts:
	push %rax
1:	lodsb
	test %al, %al
	jz 2f
	call putc
	jmp 1b
2:	pop %rax
	ret
newline:
	mov $'\n', %al
	jmp putc
putdec:
	push %rbx
	push %rcx
	push %rdx
	mov $10, %ebx
	xor %ecx, %ecx
1:	xor %edx, %edx
	div %rbx
	push %rdx
	inc %ecx
	test %rax, %rax
	jnz 1b
2:	pop %rax
	add $'0', %al
	call putc
	loop 2b
	pop %rdx
	pop %rcx
	pop %rbx
	ret

s_cmdline:	.asciz "bz: cmdline="
s_initrd:	.asciz "bz: initrd="
s_none:		.asciz "none"
s_mem:		.asciz "bz: mem="
s_rsdp:		.asciz "bz: rsdp="
s_yes:		.asciz "yes"
s_no:		.asciz "no"
	.p2align 9
