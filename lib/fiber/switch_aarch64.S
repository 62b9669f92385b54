// AArch64 (AAPCS64) context switch; see context.h.
// Saved: x19-x28, the frame pointer x29, the link register x30, and the low
// halves of v8-v15 (d8-d15), all callee-saved: 20 slots, 160 bytes.
        .text
        .globl  rill__context_switch
        .hidden rill__context_switch
        .type   rill__context_switch, %function
// void rill__context_switch(void **from /* x0 */, void *to /* x1 */)
rill__context_switch:
        sub     sp, sp, #160
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mov     x2, sp
        str     x2, [x0]
        mov     sp, x1
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #160
        ret
        .size   rill__context_switch, .-rill__context_switch

        .globl  rill__context_trampoline
        .hidden rill__context_trampoline
        .type   rill__context_trampoline, %function
// First return of a new context: x19 holds fn, x20 its argument.
rill__context_trampoline:
        mov     x0, x20
        blr     x19
        brk     #0                // fn never returns
        .size   rill__context_trampoline, .-rill__context_trampoline

        .section .note.GNU-stack,"",%progbits
