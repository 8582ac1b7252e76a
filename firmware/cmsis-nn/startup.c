/* Bare start-up for the CMSIS-NN harness on QEMU's MPS2 AN386 (Cortex-M4F): a vector table,
 * .data copied and .bss zeroed, the FPU on, main(), then a semihosting exit. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _stack_top;
int main(void);

static void semihosting_exit(int ok) {
    /* SYS_EXIT with ADP_Stopped_ApplicationExit (0x20026) or RunTimeErrorUnknown (0x20023). */
    register uint32_t r0 __asm__("r0") = 0x18;
    register uint32_t r1 __asm__("r1") = ok ? 0x20026 : 0x20023;
    __asm__ volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}

void reset_handler(void) {
    for (uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;) *d++ = *s++;
    for (uint32_t *d = &_sbss; d < &_ebss;) *d++ = 0;
    /* CPACR: full access to CP10 and CP11 (the FPU). */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n isb");
    semihosting_exit(main() == 0);
    for (;;) {}
}

static void fault(void) { semihosting_exit(0); for (;;) {} }

__attribute__((section(".vectors"), used)) static const void *vectors[16] = {
    &_stack_top, reset_handler, fault, fault, fault, fault, fault,
};
