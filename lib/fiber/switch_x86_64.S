// x86-64 System V context switch; see context.h.
// The callee-saved registers rbx, rbp, r12-r15 are pushed on the old stack;
// the SSE control word and the x87 control word are saved too, because the
// ABI makes them callee-saved as well.
        .text
        .globl  rill__context_switch
        .hidden rill__context_switch
        .type   rill__context_switch, @function
// void rill__context_switch(void **from /* rdi */, void *to /* rsi */)
rill__context_switch:
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .size   rill__context_switch, .-rill__context_switch

        .globl  rill__context_trampoline
        .hidden rill__context_trampoline
        .type   rill__context_trampoline, @function
// First "return" of a new context: r12 holds fn, r13 its argument. The
// stack is 16-byte aligned here, as a call expects.
rill__context_trampoline:
        movq    %r13, %rdi
        callq   *%r12
        ud2                     // fn never returns
        .size   rill__context_trampoline, .-rill__context_trampoline

        .section .note.GNU-stack,"",@progbits
