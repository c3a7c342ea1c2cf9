/* Entry points of the probe guest (bzImage 32/64-bit, PVH), long-mode setup, IDT stubs, ring 3. */
#define BOOT_LINUX 1
#define BOOT_PVH 2
#define BOOT_LINUX64 3

#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define SEL_UDATA 0x23
#define SEL_UCODE64 0x2b

#define MSR_EFER 0xC0000080

	/*
	 * The first 0x200 bytes of the image: the bzImage 32-bit entry at offset 0 (code32_start)
	 * and its 64-bit entry at 0x200, as the Linux boot protocol places them.
	 */
	.section .head, "ax"
	.code32
	.globl entry32_linux
entry32_linux: /* protected mode, paging off, ESI = boot_params */
	cli
	cld
	rdtsc
	movl %eax, entry_tsc
	movl %edx, entry_tsc + 4
	movl $BOOT_LINUX, %edi
	jmp common32

	.globl pvh_entry32
pvh_entry32: /* protected mode, paging off, EBX = hvm_start_info */
	cli
	cld
	rdtsc
	movl %eax, entry_tsc
	movl %edx, entry_tsc + 4
	movl $BOOT_PVH, %edi
	movl %ebx, %esi
	jmp common32

	/* kernel_info (boot protocol 2.15), found through kernel_info_offset = 0x100. */
	.org 0x100
	.ascii "LToP"
	.long 16 /* size */
	.long 16 /* size_total */
	.long 0 /* setup_type_max */

	.org 0x200
	.code64
	.globl entry64_linux
entry64_linux: /* long mode, identity map, RSI = boot_params */
	cli
	cld
	movq %rsi, %r12
	rdtsc
	movl %eax, entry_tsc
	movl %edx, entry_tsc + 4
	movq $boot_stack_top, %rsp
	/* .bss lives inside the loaded image (see probe.ld) and the page tables are prebuilt. */
	/* No SMEP/SMAP: kernel and ring-3 code share pages. */
	movq %cr4, %rax
	andq $~0x300000, %rax
	orq $0x20, %rax
	movq %rax, %cr4
	movq $pml4, %rax
	movq %rax, %cr3
	movl $BOOT_LINUX64, %edi
	movq %r12, %rsi
	jmp common64

	.text
	.code32
common32:
	lgdt gdt_ptr
	ljmp $SEL_CODE32, $1f
1:	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $boot_stack_top, %esp
	movl %edi, %ebp /* boot kind */
	movl %esi, %ebx /* boot data */
	movl %cr4, %eax
	andl $~0x300000, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax
	movl %eax, %cr0
	movl %ebp, %edi
	movl %ebx, %esi
	ljmp $SEL_CODE64, $common64

	.code64
common64: /* EDI = boot kind, RSI = boot data */
	lgdt gdt_ptr
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $boot_stack_top, %rsp
	pushq $SEL_CODE64
	pushq $1f
	lretq
1:	xorl %ebp, %ebp
	call probe_main
2:	cli
	hlt
	jmp 2b

	/* Application processors arrive here from the trampoline, on their own stack. */
	.globl ap_entry64
ap_entry64:
	lgdt gdt_ptr
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	pushq $SEL_CODE64
	pushq $1f
	lretq
1:	xorl %ebp, %ebp
	call ap_main
2:	cli
	hlt
	jmp 2b

	/*
	 * Interrupt stubs: 16 bytes each, vector v at isr_stubs + 16 * v. Each pushes a zero
	 * error code when the CPU does not, then the vector, and joins isr_common.
	 */
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	.if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	nop
	nop
	.else
	pushq $0
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	movq %rsp, %rdi
	call isr_dispatch
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp
	iretq

	/*
	 * long enter_user(long (*fn)(long, long), void *stack, long a0, long a1): runs fn(a0, a1)
	 * at CPL3 (IOPL 3, full I/O bitmap, interrupts off) through user_thunk, which ends in ud2;
	 * the #UD handler calls user_resume with fn's RAX, which becomes the result. Not syscall:
	 * under PVM the kernel then runs natively at CPL3 and its privileged instructions fault.
	 */
	.globl enter_user
enter_user:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, kernel_saved_rsp
	pushq $SEL_UDATA
	pushq %rsi
	pushfq
	popq %rax
	orq $0x3000, %rax
	andq $~0x200, %rax
	pushq %rax
	pushq $SEL_UCODE64
	pushq $user_thunk
	movq %rdi, %rax
	movq %rdx, %rdi
	movq %rcx, %rsi
	movq %rax, %rdx
	iretq

user_thunk: /* CPL3: RDX = fn, RDI/RSI = its arguments */
	call *%rdx
	ud2

	.globl user_resume
user_resume: /* from an exception raised at CPL3: RDI = result; DS/ES need no reload */
	movq %rdi, %rax
	movq kernel_saved_rsp, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

	/* long user_exitloop(long loops, long port), run at CPL3: TSC cycles for `loops` outb. */
	.globl user_exitloop
user_exitloop:
	movq %rdi, %r8
	movq %rsi, %r9
	rdtsc
	shlq $32, %rdx
	orq %rdx, %rax
	movq %rax, %r10
	movq %r9, %rdx
	xorl %eax, %eax
1:	testq %r8, %r8
	jz 2f
	outb %al, %dx
	decq %r8
	jmp 1b
2:	rdtsc
	shlq $32, %rdx
	orq %rdx, %rax
	subq %r10, %rax
	ret

	/*
	 * The AP trampoline: copied to TRAMP_BASE (below 1 MiB) and started by SIPI in real mode.
	 * It goes to long mode on the BSP's page tables and jumps to tr_entry on tr_stack.
	 */
#define TRAMP_BASE 0x3000
#define T(x) (TRAMP_BASE + (x) - ap_tramp_start)
	.section .rodata
	.balign 16
	.globl ap_tramp_start, ap_tramp_end, ap_tramp_cr3, ap_tramp_stack, ap_tramp_entry
	.code16
ap_tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tr_gdt_ptr - ap_tramp_start
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $T(tr_pm32)
	.code32
tr_pm32:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %cr4, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl T(ap_tramp_cr3), %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	ljmp $SEL_CODE64, $T(tr_lm64)
	.code64
tr_lm64: /* each AP takes its own stack, even one that checks in late */
	movq $4096, %rax
	lock xaddq %rax, T(ap_tramp_stack)
	movq %rax, %rsp
	movq T(ap_tramp_entry), %rax
	jmp *%rax
	.balign 8
tr_gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF /* 0x08 code64 */
	.quad 0x00CF92000000FFFF /* 0x10 data */
	.quad 0x00CF9A000000FFFF /* 0x18 code32 */
tr_gdt_end:
tr_gdt_ptr:
	.word tr_gdt_end - tr_gdt - 1
	.long T(tr_gdt)
	.balign 8
ap_tramp_cr3:
	.quad 0
ap_tramp_stack:
	.quad 0
ap_tramp_entry:
	.quad 0
ap_tramp_end:

	.data
	.balign 8
	.globl entry_tsc
entry_tsc: /* TSC at the first instruction (in .data: .bss is not cleared yet) */
	.quad 0
	.balign 16
	.globl gdt, gdt_ptr
gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF /* 0x08 code64 */
	.quad 0x00CF92000000FFFF /* 0x10 data */
	.quad 0x00CF9A000000FFFF /* 0x18 code32 */
	.quad 0x00CFF2000000FFFF /* 0x20 user data */
	.quad 0x00AFFA000000FFFF /* 0x28 user code64 */
	.quad 0, 0 /* 0x30 TSS, filled in at run time */
gdt_end:
	.balign 8
	.word 0, 0, 0
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt

	/* PVH: XEN_ELFNOTE_PHYS32_ENTRY (18), the 32-bit entry point. */
	.section .note.pvh, "a"
	.balign 4
	.long 4 /* namesz */
	.long 8 /* descsz */
	.long 18 /* type */
	.asciz "Xen"
	.balign 4
	.quad pvh_entry32

	/*
	 * Prebuilt identity map of the first 4 GiB in 2 MiB pages, user-accessible (ring-3 code
	 * shares them); loaded with the image, so emulated CPL0 need not build or clear it.
	 */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + 7
	.fill 511, 8, 0
pdpt:
	.quad pd + 7, pd + 0x1000 + 7, pd + 0x2000 + 7, pd + 0x3000 + 7
	.fill 508, 8, 0
pd:
	.set addr, 0
	.rept 2048
	.quad addr + 0x87
	.set addr, addr + 0x200000
	.endr

	.bss
	.balign 8
kernel_saved_rsp:
	.skip 8

	.section .stacks, "aw", @nobits
	.balign 4096
	.skip 16384
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
