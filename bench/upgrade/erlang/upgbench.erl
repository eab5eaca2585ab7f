%% The BEAM side of bench/upgrade_run.py: the same measures as
%% bench/upgrade/c/upgbench.c, done the way OTP's release handler upgrades
%% a gen_server: load the new module (code:load_binary), then for each
%% process sys:suspend, sys:change_code (its code_change/3), sys:resume.
%%
%%   erl -noshell -pa V1DIR -s upgbench main one BYTES N V2DIR
%%   erl -noshell -pa V1DIR -s upgbench main pause N V2DIR
-module(upgbench).
-export([main/1]).

main([Mode | Args]) ->
    case {Mode, Args} of
        {one, [Bytes, N, Dir]} -> one(int(Bytes), int(N), atom_to_list(Dir));
        {pause, [N, Dir]} -> pause(int(N), atom_to_list(Dir))
    end,
    halt(0).

int(A) -> list_to_integer(atom_to_list(A)).

now_ns() -> erlang:monotonic_time(nanosecond).

load(Dir) ->
    File = filename:join(Dir, "upgsrv.beam"),
    {ok, Bin} = file:read_file(File),
    {module, upgsrv} = code:load_binary(upgsrv, File, Bin).

move(P) ->
    ok = sys:suspend(P),
    ok = sys:change_code(P, upgsrv, 1, []),
    ok = sys:resume(P).

one(Bytes, N, Dir) ->
    Ps = [begin {ok, P} = upgsrv:start(Bytes), P end || _ <- lists:seq(1, N)],
    load(Dir),
    Ts = lists:sort([begin T0 = now_ns(), move(P), now_ns() - T0 end || P <- Ps]),
    io:format("one ~b ~.1f ~.1f~n", [Bytes, lists:nth(N div 2 + 1, Ts) / 1000,
                                     lists:last(Ts) / 1000]).

client(Boss, Ps, Longest) ->
    client(Boss, Ps, Ps, Longest).

client(Boss, All, [], Longest) -> client(Boss, All, All, Longest);
client(Boss, All, [P | Rest], Longest) ->
    T0 = now_ns(),
    _ = gen_server:call(P, ping, 60000),
    L = max(Longest, now_ns() - T0),
    receive
        {max, From} -> From ! {max, L}, client(Boss, All, Rest, 0);
        {stop, From} -> From ! {max, L}
    after 0 -> client(Boss, All, Rest, L)
    end.

ask(C, What) ->
    C ! {What, self()},
    receive {max, M} -> M end.

pause(N, Dir) ->
    Ps = [begin {ok, P} = upgsrv:start(64), P end || _ <- lists:seq(1, N)],
    Self = self(),
    C = spawn(fun() -> client(Self, lists:sublist(Ps, 64), 0) end),
    timer:sleep(200),
    ask(C, max),
    load(Dir),
    ask(C, max),
    T0 = now_ns(),
    [move(P) || P <- Ps],
    T1 = now_ns(),
    During = ask(C, max),
    timer:sleep(max(1, (T1 - T0) div 1000000)),
    Base = ask(C, stop),
    io:format("pause ~b ~.1f ~.2f ~.2f~n", [N, (T1 - T0) / 1.0e6, During / 1.0e6,
                                            Base / 1.0e6]).
