/*
 * The bzImage's real-mode part: the setup header (boot protocol 2.15) and a 16-bit stub for
 * loaders that enter in real mode (QEMU -kernel): it builds boot_params with the BIOS e820
 * map, switches to protected mode and jumps to code32_start with ESI = boot_params.
 * Linked at 0; the loader puts it at some segment S with DS = ES = SS = S.
 */
#define SETUP_SECTS 4
#define BP 0x4000 /* our boot_params, inside the setup segment */
#define STACK 0x7000

	.code16
	.text
	.globl _start
_start:
	.org 0x1F1
setup_sects:	.byte SETUP_SECTS
root_flags:	.word 0
syssize:	.long 0 /* filled in by mkbzimage.py */
ram_size:	.word 0
vid_mode:	.word 0xFFFF
root_dev:	.word 0
boot_flag:	.word 0xAA55
	/* 0x200 */
	.byte 0xEB, start16 - 1f
1:	.ascii "HdrS"
version:	.word 0x020F
realmode_swtch:	.long 0
start_sys_seg:	.word 0x1000
kernel_version:	.word kversion - 0x200
type_of_loader:	.byte 0
loadflags:	.byte 0x01 /* LOADED_HIGH */
setup_move_size: .word 0x8000
code32_start:	.long 0x100000
ramdisk_image:	.long 0
ramdisk_size:	.long 0
bootsect_kludge: .long 0
heap_end_ptr:	.word 0
ext_loader_ver:	.byte 0
ext_loader_type: .byte 0
cmd_line_ptr:	.long 0
initrd_addr_max: .long 0x7FFFFFFF
kernel_alignment: .long 0x200000
relocatable_kernel: .byte 0
min_alignment:	.byte 12
xloadflags:	.word 0x0001 /* XLF_KERNEL_64: 64-bit entry at load address + 0x200 */
cmdline_size:	.long 4095
hardware_subarch: .long 0
hardware_subarch_data: .quad 0
payload_offset:	.long 0
payload_length:	.long 0
setup_data:	.quad 0
pref_address:	.quad 0x100000
init_size:	.long 0 /* filled in by mkbzimage.py */
handover_offset: .long 0
kernel_info_offset: .long 0x100
hdr_end:

start16:
	cli
	cld
	movw %ds, %ax
	movw %ax, %es
	movw %ax, %ss
	movw $STACK, %sp
	/* boot_params: zeroed, then the (loader-updated) setup header copied in. */
	movw $BP, %di
	movw $2048, %cx
	xorw %ax, %ax
	rep stosw
	movw $0x1F1, %si
	movw $BP + 0x1F1, %di
	movw $hdr_end - 0x1F1, %cx
	rep movsb
	/* e820 from the BIOS, up to 128 entries at boot_params + 0x2D0. */
	xorl %ebx, %ebx
	movw $BP + 0x2D0, %di
	xorw %bp, %bp
e820_next:
	movl $0xE820, %eax
	movl $0x534D4150, %edx
	movl $20, %ecx
	int $0x15
	jc e820_done
	cmpl $0x534D4150, %eax
	jne e820_done
	incw %bp
	addw $20, %di
	cmpw $128, %bp
	jae e820_done
	testl %ebx, %ebx
	jnz e820_next
e820_done:
	movw %bp, %ax
	movb %al, BP + 0x1E8
	/* Linear addresses: base of this segment, our GDT, the 32-bit code. */
	xorl %ebx, %ebx
	movw %ds, %bx
	shll $4, %ebx
	leal gdt(%ebx), %eax
	movl %eax, gdt_ptr + 2
	leal pm32(%ebx), %eax
	movl %eax, pm_jump
	leal BP(%ebx), %esi
	movl code32_start, %ebp
#ifdef ENTER64
	leal lm64(%ebx), %eax
	movl %eax, lm_jump
#endif
	lgdtl gdt_ptr
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl *pm_jump

	.code32
pm32:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
#ifndef ENTER64
	jmp *%ebp
#else
	/*
	 * Test vehicle for the 64-bit entry (probe64.bzImage): act as a 64-bit loader would,
	 * with an identity map of the first GiB at 0x70000, and enter at code32_start + 0x200.
	 */
	movl $0x70000, %edi
	movl $3 * 1024, %ecx
	xorl %eax, %eax
	rep stosl
	movl $0x71003, 0x70000
	movl $0x72003, 0x71000
	movl $0x72000, %edi
	movl $0x83, %eax
	movl $512, %ecx
1:	movl %eax, (%edi)
	addl $8, %edi
	addl $0x200000, %eax
	loop 1b
	movl %cr4, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl $0x70000, %eax
	movl %eax, %cr3
	movl $0xC0000080, %ecx
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	ljmpl *lm_jump(%ebx) /* the image is linked at 0: add its base */
	.code64
lm64:
	movl %esi, %esi
	movl %ebp, %eax
	addq $0x200, %rax
	jmp *%rax
	.code32
#endif

	.balign 8
gdt:
	.quad 0
	.quad 0x00CF9A000000FFFF /* 0x08 code32 */
	.quad 0x00CF92000000FFFF /* 0x10 data */
	.quad 0x00AF9A000000FFFF /* 0x18 code64 */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long 0
pm_jump:
	.long 0
	.word 0x08
lm_jump:
	.long 0
	.word 0x18
kversion:
	.asciz "cove-probe"

	.org (SETUP_SECTS + 1) * 512
	.section .note.GNU-stack, "", @progbits
