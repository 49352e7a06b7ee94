function(vmtide_bpf_object name src)
endfunction()
