/*
 * A tiny PVH guest for the API socket's SendCtrlAltDel test: it polls the i8042 (no
 * interrupts), prints each byte the keyboard sends as "kbd: XX", and powers off through
 * ACPI after the last byte of Ctrl-Alt-Del's release (0x9D, Ctrl up, scancode set 1).
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
	lea s_ready, %esi
	call puts
1:	in $0x64, %al			/* status: wait for a keyboard byte */
	test $0x01, %al
	jz 1b
	test $0x20, %al			/* an aux byte: not ours */
	jnz 1b
	in $0x60, %al
	mov %al, %bl
	lea s_kbd, %esi
	call puts
	mov %bl, %al
	shr $4, %al
	call puthex
	mov %bl, %al
	call puthex
	mov $'\n', %al
	call putc
	cmp $0x9d, %bl
	jne 1b
poweroff:
	mov $0x604, %dx
	mov $0x3400, %ax		/* SLP_TYP 5 | SLP_EN */
	out %ax, %dx
	cli
	hlt
	jmp poweroff

/* al: low nibble as a hex digit */
puthex:
	and $0x0f, %al
	add $'0', %al
	cmp $'9', %al
	jbe putc
	add $('a' - '9' - 1), %al
/* al: one byte to COM1 */
putc:
	push %edx
	mov $0x3f8, %dx
	out %al, %dx
	pop %edx
	ret
/* esi: NUL-terminated string */
puts:
	lodsb
	test %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret

s_ready: .asciz "kbd: ready\n"
s_kbd:	.asciz "kbd: "
