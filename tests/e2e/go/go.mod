module l7tap.test/l7tlgo

go 1.17
