"""The experiments: one package per family, each workflow's configuration and computation
(no click, no printing beyond the run's log callback).

========================  ==================================================================
``lyapunov``              transition_2_chaos, spectrum, lyapu_convergence, lyapu_benchmark
``spectrum_training``     train_rd_model, train_rd_model_fixed_param, train_flybrain_full,
                          train_flybrain_pop
``sequences``             smnist
``glifr``                 train_glifr
``rate_to_lif``           rate_to_lif
========================  ==================================================================
"""
