/* tsf_train.c - `tsf train` and `tsf eval`, included by tsf.c. (Being written.) */
static int cmd_train(int argc, char **argv) {
    (void)argc, (void)argv;
    tt_error("train: not implemented yet");
    return 2;
}
static int cmd_eval(int argc, char **argv) {
    (void)argc, (void)argv;
    tt_error("eval: not implemented yet");
    return 2;
}
