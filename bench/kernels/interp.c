/*
 * interp — a small stack-machine interpreter with a switch dispatch loop,
 * running a bytecode program that sums Collatz sequence lengths. This is the
 * shape of every scripting-language core: an indirect jump per opcode and
 * data-dependent branches. wasm lowers the switch to br_table, which wasm2c
 * turns back into a C switch, so the question is whether the C compiler still
 * produces a jump table and keeps the VM state in registers.
 */
#include "bench.h"

enum op {
    OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_MUL, OP_AND, OP_SHR,
    OP_LT, OP_JMP, OP_JZ, OP_DUP, OP_POP,
};

typedef struct {
    int32_t op;
    int32_t arg;
} insn;

/* Runs code until OP_HALT and returns the top of the stack. regs are the
 * program's variables. Trusts the program: no stack or jump checks. */
static int64_t run(const insn *code, int64_t *regs)
{
    int64_t stack[64];
    int sp = 0;
    for (int pc = 0;;) {
        const insn i = code[pc++];
        switch (i.op) {
        case OP_HALT: return stack[sp - 1];
        case OP_PUSH: stack[sp++] = i.arg; break;
        case OP_LOAD: stack[sp++] = regs[i.arg]; break;
        case OP_STORE: regs[i.arg] = stack[--sp]; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_AND: sp--; stack[sp - 1] &= stack[sp]; break;
        case OP_SHR: sp--; stack[sp - 1] = (int64_t)((uint64_t)stack[sp - 1] >> stack[sp]); break;
        case OP_LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case OP_JMP: pc = i.arg; break;
        case OP_JZ: if (stack[--sp] == 0) pc = i.arg; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_POP: sp--; break;
        }
    }
}

/* Labels are patched after emission; see program(). */
enum { R_N, R_TOTAL, R_X, R_LIMIT };

static int emit(insn *code, int at, enum op op, int32_t arg)
{
    code[at] = (insn){op, arg};
    return at + 1;
}

/*
 * for (n = 1; n < limit; n++)
 *     for (x = n; 1 < x; total++)
 *         x = (x & 1) ? 3 * x + 1 : x >> 1;
 * return total;
 */
static int program(insn *code)
{
    int pc = 0;
    int outer = pc;
    pc = emit(code, pc, OP_LOAD, R_N);
    pc = emit(code, pc, OP_LOAD, R_LIMIT);
    pc = emit(code, pc, OP_LT, 0);
    int jz_end = pc;
    pc = emit(code, pc, OP_JZ, -1);
    pc = emit(code, pc, OP_LOAD, R_N);
    pc = emit(code, pc, OP_STORE, R_X);
    int inner = pc;
    pc = emit(code, pc, OP_PUSH, 1);
    pc = emit(code, pc, OP_LOAD, R_X);
    pc = emit(code, pc, OP_LT, 0);
    int jz_next = pc;
    pc = emit(code, pc, OP_JZ, -1);
    pc = emit(code, pc, OP_LOAD, R_X);
    pc = emit(code, pc, OP_DUP, 0);
    pc = emit(code, pc, OP_PUSH, 1);
    pc = emit(code, pc, OP_AND, 0);
    int jz_even = pc;
    pc = emit(code, pc, OP_JZ, -1);
    pc = emit(code, pc, OP_PUSH, 3);
    pc = emit(code, pc, OP_MUL, 0);
    pc = emit(code, pc, OP_PUSH, 1);
    pc = emit(code, pc, OP_ADD, 0);
    int jmp_count = pc;
    pc = emit(code, pc, OP_JMP, -1);
    int even = pc;
    pc = emit(code, pc, OP_PUSH, 1);
    pc = emit(code, pc, OP_SHR, 0);
    int count = pc;
    pc = emit(code, pc, OP_STORE, R_X);
    pc = emit(code, pc, OP_LOAD, R_TOTAL);
    pc = emit(code, pc, OP_PUSH, 1);
    pc = emit(code, pc, OP_ADD, 0);
    pc = emit(code, pc, OP_STORE, R_TOTAL);
    pc = emit(code, pc, OP_JMP, inner);
    int next = pc;
    pc = emit(code, pc, OP_LOAD, R_N);
    pc = emit(code, pc, OP_PUSH, 1);
    pc = emit(code, pc, OP_ADD, 0);
    pc = emit(code, pc, OP_STORE, R_N);
    pc = emit(code, pc, OP_JMP, outer);
    int end = pc;
    pc = emit(code, pc, OP_LOAD, R_TOTAL);
    pc = emit(code, pc, OP_HALT, 0);
    code[jz_end].arg = end;
    code[jz_next].arg = next;
    code[jz_even].arg = even;
    code[jmp_count].arg = count;
    return pc;
}

int main(void)
{
    static insn code[64];
    program(code);
    int reps = (int)bench_param(3);
    uint64_t t0 = bench_now_ns(), sum = 0;
    for (int r = 0; r < reps; r++) {
        int64_t regs[4] = {[R_N] = 1, [R_TOTAL] = 0, [R_LIMIT] = bench_param(100000 + r)};
        sum = sum * 1000003u + (uint64_t)run(code, regs);
    }
    uint64_t t1 = bench_now_ns();
    bench_report(sum, t0, t1);
    return 0;
}
